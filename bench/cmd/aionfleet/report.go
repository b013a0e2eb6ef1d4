package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// writeReport writes fleet.md and fleet.png.
func writeReport(res *Results, out string) error {
	if err := os.WriteFile(filepath.Join(out, "fleet.md"), []byte(markdown(res)), 0o644); err != nil {
		return err
	}
	if err := chart(res, filepath.Join(out, "fleet.png")); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

func reportFile(in, out, repeatFiles string) error {
	r, err := readResults(in)
	if err != nil {
		return err
	}
	if repeatFiles != "" {
		r.Repeats = nil
		for _, p := range strings.Split(repeatFiles, ",") {
			o, err := readResults(p)
			if err != nil {
				return err
			}
			r.Repeats = append(r.Repeats, repeatOf(o))
		}
		sort.Slice(r.Repeats, func(i, j int) bool { return r.Repeats[i].When.Before(r.Repeats[j].When) })
		if err := kit.WriteJSON(filepath.Join(out, "fleet.json"), r); err != nil {
			return err
		}
	}
	return writeReport(r, out)
}

func readResults(path string) (*Results, error) {
	var r Results
	if err := kit.ReadJSON(path, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (f *fleet) write(out string) error {
	res := f.res
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := kit.WriteJSON(filepath.Join(out, "fleet.json"), res); err != nil {
		return err
	}
	if err := writeReport(res, out); err != nil {
		return err
	}
	logf("wrote fleet.json, fleet.md and fleet.png to %s", out)
	for _, v := range res.Verdicts {
		logf("%-6s %s: %s (target %s)", map[bool]string{true: "MET", false: "MISSED"}[v.Met], v.What, v.Measured, v.Target)
	}
	if len(res.Errors) > 0 {
		return errors.New(strings.Join(res.Errors, "\n"))
	}
	return nil
}

func yes(b bool) string {
	if b {
		return "met"
	}
	return "**missed**"
}

// markdown is a section ready to paste into BENCHMARKS.md.
func markdown(r *Results) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	intro(w, r)
	measured(w, r)
	if len(r.Repeats) > 0 {
		repeats(w, r.Repeats)
	}
	herd(w, r)
	method(w, r)
	if len(r.Integrity.EarlyExits) > 0 {
		w("\nInstances that exited before the stop (%d; the first ones):\n\n", r.Integrity.EarlyExitCount)
		for _, e := range r.Integrity.EarlyExits {
			w("- %s, code %d, %.1f s after the launch: `%s`\n", e.Instance, e.Code, e.AfterLaunchS, strings.ReplaceAll(lastLine(e.LogTail), "`", "'"))
		}
	}
	if len(r.Errors) > 0 {
		w("\nErrors of the run:\n\n")
		for _, e := range r.Errors {
			w("- %s\n", e)
		}
	}
	return b.String()
}

// intro says what ran where, and the verdicts.
func intro(w func(string, ...any), r *Results) {
	s, m := r.Settings, r.Machine
	w("## A fleet of %d against one Vault\n\n", s.Instances)
	w("`bench/fleet.sh` (%s, %s): %d aion-exec instances, each with its own token and a `benchchild`, "+
		"%d KV-v2 secrets of %d fields each rendered into env variables, `AION_POLL_INTERVAL=%.0fs`, `AION_LOG_LEVEL=info`, "+
		"against one real Vault server (%s; not `-dev`: integrated Raft storage, one node, `operator init` with one key share, unsealed; "+
		"plain HTTP on 127.0.0.1, no TLS) with a file audit device, which counts the requests. "+
		"All instances were started at once. Machine: %d CPUs (%s), %d MiB, Linux %s, %s; load average %.2f at the start and %.2f at the end "+
		"(the machine was shared with other work).\n\n",
		r.When.Format("2006-01-02 15:04 UTC"), s.AionVersion, s.Instances, s.Secrets, s.FieldsPerSecret, s.IntervalS,
		s.VaultVersion, m.CPUs, m.CPUModel, m.MemoryMiB, m.Kernel, m.GoVersion, m.LoadStart[0], m.LoadEnd[0])

	w("| target | measured | verdict |\n| --- | --- | --- |\n")
	for _, v := range r.Verdicts {
		w("| %s: %s | %s | %s |\n", v.What, v.Target, v.Measured, yes(v.Met))
	}
	w("\n![fleet: requests per second over the run, the recovery, write → SIGHUP](bench/results/fleet.png)\n\n")
}

// measured is the table of everything measured.
func measured(w func(string, ...any), r *Results) {
	s, st := r.Settings, r.Steady
	rss := st.RSS
	w("| measured | value |\n| --- | --- |\n")
	w("| start: fork of all %d → last child started | %.1f s (forking took %.0f ms); launch → child start median %.0f ms, p90 %.0f ms, max %.0f ms |\n",
		s.Instances, r.Start.SpreadS, r.Start.LaunchLoopMs, r.Start.LaunchToChildMs.Median, r.Start.LaunchToChildMs.P90, r.Start.LaunchToChildMs.Max)
	w("| steady Vault requests (%.0f s window) | %.1f/s (nominal %d × %d / %.0f s = %.0f/s; the jitter shortens intervals by 5%% on average) |\n",
		st.WindowS, st.Rate, s.Instances, s.Secrets, s.IntervalS, st.NominalRate)
	w("| requests per whole second in the steady window | median %.0f, p90 %.0f, busiest %d (%.2f× nominal); busiest 1 s anywhere in it %d (%.2f×) |\n",
		st.PerSecond.Median, st.PerSecond.P90, st.BusiestSecond, float64(st.BusiestSecond)/st.NominalRate, st.BusiestSliding, float64(st.BusiestSliding)/st.NominalRate)
	w("| Vault request → response (audit), steady | median %.1f ms, p99 %.0f ms, max %.0f ms |\n", st.LatencyMs.Median, st.LatencyMs.P99, st.LatencyMs.Max)
	w("| Vault CPU, steady | %.1f%% of one core (utime+stime) |\n", st.VaultCPUPct)
	w("| all aion-exec CPU, steady | %.1f%% of one core together (%.3f%% each) |\n", st.AionCPUPct, st.AionCPUPct/float64(max(1, s.Instances)))
	w("| aion-exec VmRSS per instance, steady | median %.1f MiB, p90 %.1f MiB, max %.1f MiB (VmHWM max %.1f MiB) |\n",
		mib(rss.AionPerInstanceKiB.Median), mib(rss.AionPerInstanceKiB.P90), mib(rss.AionPerInstanceKiB.Max), mib(rss.AionHWMKiB.Max))
	w("| aion-exec memory, all %d together | VmRSS %.0f MiB (sum; counts the shared text of the binary %d times), RssAnon %.0f MiB, PSS %.0f MiB; children: VmRSS %.0f MiB, PSS %.0f MiB |\n",
		rss.AionPerInstanceKiB.N, mib(float64(rss.AionTotalKiB)), rss.AionPerInstanceKiB.N, mib(float64(rss.AionAnonTotalKiB)), mib(float64(rss.AionPssTotalKiB)),
		mib(float64(rss.ChildTotalKiB)), mib(float64(rss.ChildPssTotalKiB)))
	w("| aion-exec VmRSS at the end (after the outage) | median %.1f MiB, max %.1f MiB, total %.0f MiB |\n",
		mib(r.EndRSS.AionPerInstanceKiB.Median), mib(r.EndRSS.AionPerInstanceKiB.Max), mib(float64(r.EndRSS.AionTotalKiB)))
	w("| Vault VmRSS | %.0f MiB steady (VmHWM %.0f MiB); %.0f MiB after the restart |\n", mib(float64(rss.VaultKiB)), mib(float64(rss.VaultHWMKiB)), mib(float64(r.EndRSS.VaultKiB)))
	for _, rot := range r.Rotations {
		tag := ""
		if rot.AfterOutage {
			tag = ", after the outage"
		}
		w("| rotation %d (`%s`%s): write → SIGHUP | %d of %d children, %d late, %d with more than one; median %.2f s, p90 %.2f s, max %.2f s |\n",
			rot.N, rot.Secret, tag, rot.Reached, s.Instances, rot.Late, rot.Extra, rot.LatencyMs.Median/1000, rot.LatencyMs.P90/1000, rot.LatencyMs.Max/1000)
	}
	o := r.Outage
	w("| outage | SIGTERM → exited %.1f s; down %.1f s; start → listening %.2f s → unsealed and active %.2f s |\n",
		o.DownAt.Sub(o.StopAt).Seconds(), o.DownS, o.ListenAt.Sub(o.StartAt).Seconds(), o.ActiveAt.Sub(o.StartAt).Seconds())
	w("| requests per second after recovery (from the first one served) | %s; busiest 1 s anywhere in the 30 s after: %d (%.2f×) |\n", joinInts(o.AfterSeries, 15), o.BusiestSliding, float64(o.BusiestSliding)/st.NominalRate)
	w("| instances by the second of their own first request after recovery | %s (the last bin: %d s or later) |\n", joinInts(o.FirstRequestBySecond, 20), len(o.FirstRequestBySecond)-1)
	for k, l := range o.LatencyMsBySecond {
		if l.N == 0 {
			continue
		}
		w("| Vault request → response in second %d after recovery | median %.1f ms, p99 %.0f ms, max %.0f ms |\n", k, l.Median, l.P99, l.Max)
	}
	w("| Vault CPU, first %.0f s after its start | %.1f%% of one core |\n", 3*s.IntervalS, o.VaultCPUPctAfter)
	w("| instances logging `vault read failed` / `recovered` | %d / %d |\n", r.Logs.InstancesDegraded, r.Logs.InstancesRecovered)
	w("| stop of the whole fleet (SIGTERM) | %.1f s |\n\n", r.Shutdown.TookS)
}

// repeats summarises the other runs.
func repeats(w func(string, ...any), ps []Repeat) {
	w("Other runs of the same benchmark on this machine (the table above is the last one):\n\n| run | first second after recovery | steady: busiest second | Vault CPU steady | aion-exec RSS median | write → SIGHUP max | targets met |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range ps {
		w("| %s, %d instances | %d = %.2f× | %d | %.1f%% | %.1f MiB | %.2f s | %d of %d |\n", p.When.Format("15:04 UTC"), p.Instances, p.FirstSecond, p.RatioNominal,
			p.SteadyBusiest, p.VaultCPUPct, mib(p.AionRSSMedian), p.MaxHupMs/1000, p.Met, p.Of)
	}
	w("\n")
}

// method is how it is measured, and the caveats.
func method(w func(string, ...any), r *Results) {
	s, m := r.Settings, r.Machine
	w("How it is measured: requests are the fleet tokens' `request` entries of the file audit device; "+
		"a rotation is one KV write of fresh values (every field of one secret), and a child's latency is its own `hup` timestamp minus the time the write was sent; "+
		"hups are counted in a window of two intervals after each write, so a second SIGHUP would show (every instance polls at least once more in it). "+
		"The outage is SIGTERM to Vault, %.0f s with no process listening, then a start and the unseal; "+
		"the first second after recovery starts at the first fleet request Vault served (a sealed Vault audits nothing). "+
		"CPU is utime+stime from /proc/PID/stat over the window, RSS is VmRSS from /proc/PID/status.\n\n", s.OutageS)
	w("Caveats: one machine (%d CPUs) runs Vault, the %d instances, their children and the measuring tool, so Vault competes with the fleet for CPU; "+
		"plain HTTP (a fleet with TLS costs Vault a handshake per connection, paid once per keep-alive connection); "+
		"tokens without Vault's templated `default` policy (see aionbench); `AION_STARTUP_TIMEOUT=%.0fs` so a slow start of %d instances on 2 cores is not cut short; "+
		"every instance runs as the same user, so each holds one inotify instance (`AION_TEMPLATES_DIR` is watched) out of `fs.inotify.max_user_instances` "+
		"(%d during the run; Linux's default is 128, which `bench/fleet.sh` raises for the run: a node that runs more aion-exec of one user than that needs the same).\n",
		m.CPUs, s.Instances, s.StartupTimeoutS, s.Instances, m.InotifyMaxUserInstances)
}

// herd reads the recovery against the steady window: how lumpy the steady
// state itself is, how many instances came back in the first second, and
// how busy Vault was.
func herd(w func(string, ...any), r *Results) {
	o, st, s := r.Outage, r.Steady, r.Settings
	if len(o.FirstRequestBySecond) == 0 || st.NominalRate == 0 {
		return
	}
	n := 0
	for _, c := range o.FirstRequestBySecond {
		n += c
	}
	last := 0
	for k, c := range o.FirstRequestBySecond {
		if c > 0 {
			last = k
		}
	}
	later := 0
	for k, c := range o.AfterSeries {
		if k >= 5 {
			later = max(later, c)
		}
	}
	share := 0.0
	if n > 0 {
		share = float64(o.FirstRequestBySecond[0]) / float64(n) * 100
	}
	// A renewal process with gaps uniform in [0, T] has its next event in
	// a given second with probability (1 - 1/(2T))/(T/2).
	T := s.IntervalS
	fj := (1 - 1/(2*T)) / (T / 2) * 100
	w("Reading the recovery. The steady window's whole seconds had a median of %.0f requests and a busiest of %d (%.2f× the nominal rate); "+
		"the %d instances had started within %.1f s of each other. "+
		"After the outage, %d of %d instances (%.0f%%) sent their first request in the first second Vault served again, and all of them within %d s; "+
		"waits drawn by full jitter up to the %.0f s cap alone would put about %.0f%% of the fleet in any one second and spread the rest over the whole interval. "+
		"Vault on the shared %d CPUs answered that second's requests in a median %.0f ms (p99 %.0f ms), against %.1f ms steady. "+
		"The busiest second from 5 to 30 s after the recovery had %d requests, the steady window's %d.\n\n",
		st.PerSecond.Median, st.BusiestSecond, float64(st.BusiestSecond)/st.NominalRate, s.Instances, r.Start.SpreadS,
		o.FirstRequestBySecond[0], n, share, last+1, T, fj, r.Machine.CPUs,
		firstLatency(o, 0).Median, firstLatency(o, 0).P99, st.LatencyMs.Median, later, st.BusiestSecond)
}

func firstLatency(o Outage, k int) Stats {
	if k < len(o.LatencyMsBySecond) {
		return o.LatencyMsBySecond[k]
	}
	return Stats{}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func joinInts(xs []int, n int) string {
	var parts []string
	for i, x := range xs {
		if i >= n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprint(x))
	}
	return strings.Join(parts, ", ")
}
