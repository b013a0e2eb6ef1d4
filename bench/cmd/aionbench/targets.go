package main

import (
	"fmt"
	"slices"
)

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// targets checks the targets against this run.
func targets(r report) []string {
	var out []string
	small, large := r.Sizes[0], r.Sizes[len(r.Sizes)-1]
	a5, a100 := r.launch("aion-exec", small), r.launch("aion-exec", large)
	if a5 == nil || a100 == nil {
		return []string{"aion-exec was not measured: no verdict"}
	}
	lim := map[int]float64{5: 8, 100: 25}
	for _, l := range []*LaunchResult{a5, a100} {
		if max, ok := lim[l.N]; ok {
			out = append(out, fmt.Sprintf("launch → child start ≤ %.0f ms at %d secrets: %s (median %s, p90 %s)", max, l.N, verdict(l.Stats.Median <= max), ms(l.Stats.Median), ms(l.Stats.P90)))
		}
	}
	if c5, c100 := r.launch("consul-template", small), r.launch("consul-template", large); c5 != nil && c100 != nil {
		x5, x100 := c5.Stats.Median/a5.Stats.Median, c100.Stats.Median/a100.Stats.Median
		out = append(out, fmt.Sprintf("≥ 1.6× faster than consul-template at %d secrets: %s (%.1f×)", small, verdict(x5 >= 1.6), x5))
		out = append(out, fmt.Sprintf("≥ 2.5× faster than consul-template at %d secrets: %s (%.1f×)", large, verdict(x100 >= 2.5), x100))
	}
	if v5, v100 := r.launch("vault-agent", small), r.launch("vault-agent", large); v5 != nil && v100 != nil {
		x5, x100 := v5.Stats.Median/a5.Stats.Median, v100.Stats.Median/a100.Stats.Median
		out = append(out, fmt.Sprintf("≥ 250× faster than Vault Agent: %s (%s× at %d secrets, %s× at %d)", verdict(x5 >= 250 && x100 >= 250), thousands(x5), small, thousands(x100), large))
	}
	for _, n := range slices.Compact([]int{small, large}) {
		if x := r.exit("aion-exec", n); x != nil {
			out = append(out, fmt.Sprintf("child exits → aion-exec exits ≤ 2 ms median at %d secrets: %s (median %s, p90 %s)", n, verdict(x.Stats.Median <= 2), ms(x.Stats.Median), ms(x.Stats.P90)))
			if y := r.exit("aion-exec-nowatch", n); y != nil {
				out = append(out, fmt.Sprintf("… the same without AION_TEMPLATES_DIR (no inotify watch to tear down): %s (median %s, p90 %s)", verdict(y.Stats.Median <= 2), ms(y.Stats.Median), ms(y.Stats.P90)))
			}
		}
	}
	rssLim := map[int]float64{5: 12, 100: 15}
	for _, n := range slices.Compact([]int{small, large}) {
		s := r.sup("aion-exec", n)
		max, ok := rssLim[n]
		if s == nil || !ok {
			continue
		}
		out = append(out, fmt.Sprintf("RSS while supervising ≤ %.0f MiB at %d secrets: %s (steady %.1f MiB, peak %.1f MiB)", max, n, verdict(mib(s.SteadyRSSKiB) <= max), mib(s.SteadyRSSKiB), mib(s.PeakRSSKiB)))
	}
	if i := r.info("aion-exec"); i != nil {
		out = append(out, fmt.Sprintf("stripped binary ≤ 12 MB: %s (%s)", verdict(i.Bytes <= 12e6), mb(i.Bytes)))
	}
	for _, l := range []*LaunchResult{a5, a100} {
		max := l.N + 1 + 1 // secrets + mounts (one: secret/) + 1
		out = append(out, fmt.Sprintf("Vault requests at start ≤ secrets + mounts + 1 = %d at %d secrets: %s (%d)", max, l.N, verdict(l.StartReqs <= max), l.StartReqs))
	}
	for _, n := range slices.Compact([]int{small, large}) {
		s := r.sup("aion-exec", n)
		if s == nil {
			continue
		}
		reads := s.PerIntByPath["read secret/data/bench/*"]
		other := s.PerInterval - reads
		perSecret := reads / float64(n)
		ok := other < 0.001 && perSecret >= 0.9 && perSecret <= 1.1
		out = append(out, fmt.Sprintf("steady state, %d secrets: one read per secret per interval and nothing else: %s (%.2f reads per secret per poll, %.1f other requests per poll, a poll every %.2f s)", n, verdict(ok), perSecret, other, s.ReadPeriodS))
	}
	for _, v := range []Variant{Reload, Restart} {
		p := r.prop("aion-exec", v)
		if p == nil {
			continue
		}
		lim := r.IntervalS*1000 + 100
		out = append(out, fmt.Sprintf("KV write reaches the child (%s) within one interval + 100 ms = %s: %s (median %s, max %s over %d writes)", v, ms(lim), verdict(p.Stats.Max <= lim), ms(p.Stats.Median), ms(p.Stats.Max), p.Stats.N))
	}
	return out
}
