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

// find is the first element of xs that match accepts, or nil.
func find[T any](xs []T, match func(*T) bool) *T {
	for i := range xs {
		if match(&xs[i]) {
			return &xs[i]
		}
	}
	return nil
}

func (r report) launch(tool string, n int) *LaunchResult {
	return find(r.Launch, func(l *LaunchResult) bool { return l.Tool == tool && l.N == n })
}

func (r report) exit(tool string, n int) *ExitResult {
	return find(r.Exit, func(x *ExitResult) bool { return x.Tool == tool && x.N == n })
}

func (r report) sup(tool string, n int) *SuperviseResult {
	return find(r.Supervise, func(s *SuperviseResult) bool { return s.Tool == tool && s.N == n })
}

func (r report) prop(tool string, v Variant) *Propagation {
	return find(r.Propagation, func(p *Propagation) bool { return p.Tool == tool && p.Variant == v })
}

func (r report) info(tool string) *ToolInfo {
	return find(r.Tools, func(i *ToolInfo) bool { return i.Name == tool })
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
	header(w, res)
	w("| |")
	for _, t := range tools {
		w(" %s |", toolTitle[t])
	}
	all := table{w, tools}
	all.rule()
	timeRows(all, r)
	costRows(all, r)
	peerTable(w, r, tools)
	phaseTable(w, r, tools)
	pathTable(w, r, tools)
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

// header says when and where the run was made, and with which token.
func header(w func(string, ...any), res *Results) {
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
}

// table is a Markdown table with a column per tool or peer.
type table struct {
	w    func(string, ...any)
	cols []string
}

// rule ends the header row and writes the rule under it.
func (t table) rule() {
	t.w("\n|---|")
	for range t.cols {
		t.w("---|")
	}
	t.w("\n")
}

// row writes label and each column's cell, "–" for an empty one.
func (t table) row(label string, cell func(col string) string) {
	t.w("| %s |", label)
	for _, col := range t.cols {
		c := cell(col)
		if c == "" {
			c = "–"
		}
		t.w(" %s |", c)
	}
	t.w("\n")
}

// timeRows are the main table's times: launch, exit and RSS.
func timeRows(t table, r report) {
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("launch → child start, %d secrets (median / p90, audit device off)", n), func(t string) string {
			if l := r.launch(t, n); l != nil {
				return fmt.Sprintf("%s / %s", ms(l.Stats.Median), ms(l.Stats.P90))
			}
			return ""
		})
	}
	for _, n := range r.Sizes {
		if r.exit("aion-exec", n) == nil {
			continue
		}
		t.row(fmt.Sprintf("child exits → wrapper exits, %d secrets (median / p90)", n), func(t string) string {
			if x := r.exit(t, n); x != nil {
				return fmt.Sprintf("%s / %s", ms(x.Stats.Median), ms(x.Stats.P90))
			}
			return ""
		})
	}
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("wrapper RSS while supervising, %d secrets (median of the last %gs of %gs / peak)", n, r.SteadyS, r.SuperviseS), func(t string) string {
			if s := r.sup(t, n); s != nil {
				return fmt.Sprintf("%.1f / %.1f MiB", mib(s.SteadyRSSKiB), mib(s.PeakRSSKiB))
			}
			return ""
		})
	}
}

// costRows are the main table's costs: binary, Vault requests and how a
// change reaches the child.
func costRows(t table, r report) {
	t.row("binary", func(t string) string {
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
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("Vault requests at start, %d secrets", n), func(t string) string {
			if l := r.launch(t, n); l != nil && t != "floor" && t != "vault-floor" {
				return fmt.Sprint(l.StartReqs)
			}
			return ""
		})
	}
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("Vault requests per poll, steady, %d secrets", n), func(t string) string {
			if s := r.sup(t, n); s != nil {
				return fmt.Sprintf("%.1f (a secret re-read every %.2f s)", s.PerInterval, s.ReadPeriodS)
			}
			return ""
		})
	}
	for _, v := range []Variant{Reload, Restart} {
		t.row(fmt.Sprintf("KV write → child %s, %d secrets (median / max)", map[Variant]string{Reload: "gets SIGHUP", Restart: "restarted with the new value"}[v], r.Sizes[0]), func(t string) string {
			if p := r.prop(t, v); p != nil {
				return fmt.Sprintf("%s / %s", ms(p.Stats.Median), ms(p.Stats.Max))
			}
			if r.info(t) != nil {
				return "not offered"
			}
			return ""
		})
	}
}

// peerTable is aion-exec against each peer measured, as ratios from the
// same run.
func peerTable(w func(string, ...any), r report, tools []string) {
	w("\n**aion-exec against each peer, same run** (how many times faster, smaller, fewer):\n\n")
	w("| | ")
	var ps []string
	for _, p := range peers {
		if slices.Contains(tools, p) {
			ps = append(ps, p)
			w("vs %s | ", toolTitle[p])
		}
	}
	t := table{w, ps}
	t.rule()
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("launch → child start, %d secrets", n), func(p string) string {
			a, q := r.launch("aion-exec", n), r.launch(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return ratio(q.Stats.Median, a.Stats.Median) + " faster"
		})
	}
	for _, n := range r.Sizes {
		t.row(fmt.Sprintf("RSS while supervising, %d secrets", n), func(p string) string {
			a, q := r.sup("aion-exec", n), r.sup(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return ratio(float64(q.SteadyRSSKiB), float64(a.SteadyRSSKiB)) + " smaller"
		})
	}
	t.row("binary (stripped)", func(p string) string {
		a, q := r.info("aion-exec"), r.info(p)
		if a == nil || q == nil {
			return "–"
		}
		return ratio(float64(q.Bytes), float64(a.Bytes)) + " smaller"
	})
	for _, n := range []int{r.Sizes[0], r.Sizes[len(r.Sizes)-1]} {
		t.row(fmt.Sprintf("Vault requests at start, %d secrets", n), func(p string) string {
			a, q := r.launch("aion-exec", n), r.launch(p, n)
			if a == nil || q == nil {
				return "–"
			}
			return fmt.Sprintf("%d vs %d", a.StartReqs, q.StartReqs)
		})
	}
}

// phaseTable is where launch → child start goes.
func phaseTable(w func(string, ...any), r report, tools []string) {
	w("\n**Where launch → child start goes** (medians of the launches with the audit device on, which makes Vault slower than in the timed runs above; the phases come from the audit log's clock: until Vault receives the first request, until it answers the last one before the child starts, then until the child runs):\n\n")
	w("| tool | secrets | before the first Vault request | Vault phase | last answer → child runs | total (audit on) |\n|---|---|---|---|---|---|\n")
	for _, t := range tools {
		if t == "floor" || t == "vault-floor" {
			continue
		}
		for _, n := range r.Sizes {
			l := r.launch(t, n)
			if l == nil {
				continue
			}
			w("| %s | %d | %s | %s | %s | %s |\n", toolTitle[t], n, ms(l.BeforeVaultMs), ms(l.VaultMs), ms(l.AfterVaultMs), ms(l.CountedMs))
		}
	}
}

// pathTable is where the Vault requests go.
func pathTable(w func(string, ...any), r report, tools []string) {
	w("\n**Vault requests by path** (at start: from launch to child start, first counted launch; steady: per poll cycle, averaged over the whole cycles in the last %gs of supervision):\n\n", r.SteadyS)
	w("| tool | secrets | at start | steady, per poll |\n|---|---|---|---|\n")
	for _, t := range tools {
		if t == "floor" || t == "vault-floor" {
			continue
		}
		for _, n := range []int{r.Sizes[0], r.Sizes[len(r.Sizes)-1]} {
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
}
