package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

var toolTitle = map[string]string{
	"floor":           "floor (child alone)",
	"vault-floor":     "Vault's own time (bare HTTP)",
	"aion-exec":       "aion-exec",
	"vault-agent":     "Vault Agent exec",
	"consul-template": "consul-template exec",
}

var peers = []string{"vault-agent", "consul-template"}

type report struct{ *Results }

func (r report) launch(tool string, n int) *LaunchResult {
	for i := range r.Launch {
		if r.Launch[i].Tool == tool && r.Launch[i].N == n {
			return &r.Launch[i]
		}
	}
	return nil
}

func (r report) exit(tool string, n int) *ExitResult {
	for i := range r.Exit {
		if r.Exit[i].Tool == tool && r.Exit[i].N == n {
			return &r.Exit[i]
		}
	}
	return nil
}

func (r report) sup(tool string, n int) *SuperviseResult {
	for i := range r.Supervise {
		if r.Supervise[i].Tool == tool && r.Supervise[i].N == n {
			return &r.Supervise[i]
		}
	}
	return nil
}

func (r report) prop(tool string, v Variant) *Propagation {
	for i := range r.Propagation {
		if r.Propagation[i].Tool == tool && r.Propagation[i].Variant == v {
			return &r.Propagation[i]
		}
	}
	return nil
}

func (r report) info(tool string) *ToolInfo {
	for i := range r.Tools {
		if r.Tools[i].Name == tool {
			return &r.Tools[i]
		}
	}
	return nil
}

func (r report) tools() []string {
	var out []string
	for _, t := range []string{"floor", "vault-floor", "aion-exec", "vault-agent", "consul-template"} {
		if r.launch(t, r.Sizes[0]) != nil || r.info(t) != nil {
			out = append(out, t)
		}
	}
	return out
}

func ms(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%s ms", thousands(x))
	case x >= 10:
		return fmt.Sprintf("%.1f ms", x)
	default:
		return fmt.Sprintf("%.2f ms", x)
	}
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func ratio(peer, ours float64) string {
	if ours <= 0 || peer <= 0 {
		return "–"
	}
	r := peer / ours
	if r >= 100 {
		return fmt.Sprintf("%s×", thousands(r))
	}
	return fmt.Sprintf("%.1f×", r)
}

func markdown(res *Results) string {
	r := report{res}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	tools := r.tools()
	m := res.Machine
	w("Measured %s on %d CPUs (%s), Linux %s, %d MiB RAM, %s; Vault 1.19.0 dev server on loopback; poll/render interval %gs for every tool; 1-minute load average %.2f at the start, %.2f at the end.\n\n",
		res.When.Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPUModel, m.Kernel, m.MemoryMiB, m.GoVersion, res.IntervalS, m.LoadStart, m.LoadEnd)
	if res.DefaultPolicy {
		w("The tools' token has Vault's templated `default` policy, which Vault re-parses on every request: every Vault request is slower than with the least-privilege token of the default run.\n\n")
	} else {
		w("The tools' token has one least-privilege policy (read the bench secrets, look up and renew itself) and not Vault's templated `default` policy.\n\n")
	}
	if m.LoadStart > 1 || m.LoadEnd > 1 {
		w("> **The machine was busy with other work during this run** (load above 1 on %d CPUs): times are inflated, the ratios between tools less so, since the runs of all tools were interleaved.\n\n", m.CPUs)
	}

	// The main table.
	w("| |")
	for _, t := range tools {
		w(" %s |", toolTitle[t])
	}
	w("\n|---|")
	for range tools {
		w("---|")
	}
	w("\n")
	row := func(label string, cell func(t string) string) {
		w("| %s |", label)
		for _, t := range tools {
			c := cell(t)
			if c == "" {
				c = "–"
			}
			w(" %s |", c)
		}
		w("\n")
	}
	for _, n := range res.Sizes {
		row(fmt.Sprintf("launch → child start, %d secrets (median / p90, audit device off)", n), func(t string) string {
			if l := r.launch(t, n); l != nil {
				return fmt.Sprintf("%s / %s", ms(l.Stats.Median), ms(l.Stats.P90))
			}
			return ""
		})
	}
	for _, n := range res.Sizes {
		if r.exit("aion-exec", n) == nil {
			continue
		}
		row(fmt.Sprintf("child exits → wrapper exits, %d secrets (median / p90)", n), func(t string) string {
			if x := r.exit(t, n); x != nil {
				return fmt.Sprintf("%s / %s", ms(x.Stats.Median), ms(x.Stats.P90))
			}
			return ""
		})
	}
	for _, n := range res.Sizes {
		row(fmt.Sprintf("wrapper RSS while supervising, %d secrets (median of the last %gs of %gs / peak)", n, res.SteadyS, res.SuperviseS), func(t string) string {
			if s := r.sup(t, n); s != nil {
				return fmt.Sprintf("%.1f / %.1f MiB", mib(s.SteadyRSSKiB), mib(s.PeakRSSKiB))
			}
			return ""
		})
	}
	row("binary", func(t string) string {
		i := r.info(t)
		if i == nil {
			return ""
		}
		s := mb(i.Bytes) + " stripped"
		if i.UnstrippedBytes > 0 {
			s += fmt.Sprintf(" (%s unstripped)", mb(i.UnstrippedBytes))
		}
		return s
	})
	for _, n := range res.Sizes {
		row(fmt.Sprintf("Vault requests at start, %d secrets", n), func(t string) string {
			if l := r.launch(t, n); l != nil && t != "floor" && t != "vault-floor" {
				return fmt.Sprint(l.StartReqs)
			}
			return ""
		})
	}
	for _, n := range res.Sizes {
		row(fmt.Sprintf("Vault requests per poll, steady, %d secrets", n), func(t string) string {
			if s := r.sup(t, n); s != nil {
				return fmt.Sprintf("%.1f (a secret re-read every %.2f s)", s.PerInterval, s.ReadPeriodS)
			}
			return ""
		})
	}
	for _, v := range []Variant{Reload, Restart} {
		row(fmt.Sprintf("KV write → child %s, %d secrets (median / max)", map[Variant]string{Reload: "gets SIGHUP", Restart: "restarted with the new value"}[v], res.Sizes[0]), func(t string) string {
			if p := r.prop(t, v); p != nil {
				return fmt.Sprintf("%s / %s", ms(p.Stats.Median), ms(p.Stats.Max))
			}
			if r.info(t) != nil {
				return "not offered"
			}
			return ""
		})
	}

	// Ratios to each peer, from the same run.
	w("\n**aion-exec against each peer, same run** (how many times faster, smaller, fewer):\n\n")
	w("| | ")
	var ps []string
	for _, p := range peers {
		if slices.Contains(tools, p) {
			ps = append(ps, p)
			w("vs %s | ", toolTitle[p])
		}
	}
	w("\n|---|")
	for range ps {
		w("---|")
	}
	w("\n")
	prow := func(label string, cell func(p string) string) {
		w("| %s |", label)
		for _, p := range ps {
			w(" %s |", cell(p))
		}
		w("\n")
	}
	for _, n := range res.Sizes {
		prow(fmt.Sprintf("launch → child start, %d secrets", n), func(p string) string {
			a, q := r.launch("aion-exec", n), r.launch(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return ratio(q.Stats.Median, a.Stats.Median) + " faster"
		})
	}
	for _, n := range res.Sizes {
		prow(fmt.Sprintf("RSS while supervising, %d secrets", n), func(p string) string {
			a, q := r.sup("aion-exec", n), r.sup(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return ratio(float64(q.SteadyRSSKiB), float64(a.SteadyRSSKiB)) + " smaller"
		})
	}
	prow("binary (stripped)", func(p string) string {
		a, q := r.info("aion-exec"), r.info(p)
		if a == nil || q == nil {
			return "–"
		}
		return ratio(float64(q.Bytes), float64(a.Bytes)) + " smaller"
	})
	for _, n := range []int{res.Sizes[0], res.Sizes[len(res.Sizes)-1]} {
		prow(fmt.Sprintf("Vault requests at start, %d secrets", n), func(p string) string {
			a, q := r.launch("aion-exec", n), r.launch(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return fmt.Sprintf("%d vs %d", a.StartReqs, q.StartReqs)
		})
	}

	// Where launch time goes.
	w("\n**Where launch → child start goes** (medians of the launches with the audit device on, which makes Vault slower than in the timed runs above; the phases come from the audit log's clock: until Vault receives the first request, until it answers the last one before the child starts, then until the child runs):\n\n")
	w("| tool | secrets | before the first Vault request | Vault phase | last answer → child runs | total (audit on) |\n|---|---|---|---|---|---|\n")
	for _, t := range tools {
		if t == "floor" || t == "vault-floor" {
			continue
		}
		for _, n := range res.Sizes {
			l := r.launch(t, n)
			if l == nil {
				continue
			}
			w("| %s | %d | %s | %s | %s | %s |\n", toolTitle[t], n, ms(l.BeforeVaultMs), ms(l.VaultMs), ms(l.AfterVaultMs), ms(l.CountedMs))
		}
	}

	// Where the requests go.
	w("\n**Vault requests by path** (at start: from launch to child start, first counted launch; steady: per poll cycle, averaged over the whole cycles in the last %gs of supervision):\n\n", res.SteadyS)
	w("| tool | secrets | at start | steady, per poll |\n|---|---|---|---|\n")
	for _, t := range tools {
		if t == "floor" || t == "vault-floor" {
			continue
		}
		for _, n := range []int{res.Sizes[0], res.Sizes[len(res.Sizes)-1]} {
			l, s := r.launch(t, n), r.sup(t, n)
			if l == nil {
				continue
			}
			var st, ss []string
			for _, k := range slices.Sorted(maps.Keys(l.ByPath)) {
				st = append(st, fmt.Sprintf("%d × `%s`", l.ByPath[k], k))
			}
			if s != nil {
				for _, k := range slices.Sorted(maps.Keys(s.PerIntByPath)) {
					ss = append(ss, fmt.Sprintf("%.1f × `%s`", s.PerIntByPath[k], k))
				}
			}
			w("| %s | %d | %s | %s |\n", toolTitle[t], n, strings.Join(st, "<br>"), strings.Join(ss, "<br>"))
		}
	}

	w("\n**Targets checked by the harness:**\n\n")
	for _, line := range targets(r) {
		w("- %s\n", line)
	}
	if len(res.Errors) > 0 {
		w("\n**Errors in this run:**\n\n")
		for _, e := range res.Errors {
			w("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
	return b.String()
}

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
