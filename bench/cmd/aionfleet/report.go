package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Results is everything one fleet run measured.
type Results struct {
	When      time.Time  `json:"when"`
	Machine   Machine    `json:"machine"`
	Settings  Settings   `json:"settings"`
	Start     Start      `json:"start"`
	Steady    Steady     `json:"steady"`
	Rotations []Rotation `json:"rotations"`
	Outage    Outage     `json:"outage"`
	EndRSS    rssSample  `json:"end_rss"`
	Integrity Integrity  `json:"integrity"`
	Logs      Logs       `json:"logs"`
	Shutdown  struct {
		TookS              float64 `json:"took_s"`
		StillRunningAfterS int     `json:"still_running_after_30s"`
	} `json:"shutdown"`
	StopAt   time.Time `json:"stop_at"`
	Series   Series    `json:"series"`
	Verdicts []Verdict `json:"verdicts"`
	Errors   []string  `json:"errors,omitempty"`
	// Repeats are other runs of the same benchmark on the same machine
	// (aionfleet report -repeats), for the spread between runs.
	Repeats []Repeat `json:"repeats,omitempty"`
}

// Repeat is the gist of another run.
type Repeat struct {
	When           time.Time `json:"when"`
	Instances      int       `json:"instances"`
	FirstSecond    int       `json:"first_second"`
	RatioNominal   float64   `json:"ratio_to_nominal"`
	BusiestSliding int       `json:"busiest_sliding_second,omitempty"`
	SteadyBusiest  int       `json:"steady_busiest_second"`
	VaultCPUPct    float64   `json:"vault_cpu_pct_of_core"`
	AionRSSMedian  float64   `json:"aion_exec_rss_median_kib"`
	MaxHupMs       float64   `json:"max_write_to_hup_ms"`
	Met            int       `json:"verdicts_met"`
	Of             int       `json:"verdicts"`
}

func repeatOf(r *Results) Repeat {
	p := Repeat{When: r.When, Instances: r.Settings.Instances, FirstSecond: r.Outage.FirstSecond, RatioNominal: r.Outage.RatioNominal,
		BusiestSliding: r.Outage.BusiestSliding, SteadyBusiest: r.Steady.BusiestSecond, VaultCPUPct: r.Steady.VaultCPUPct,
		AionRSSMedian: r.Steady.RSS.AionPerInstanceKiB.Median, Of: len(r.Verdicts)}
	for _, rot := range r.Rotations {
		p.MaxHupMs = math.Max(p.MaxHupMs, rot.LatencyMs.Max)
	}
	for _, v := range r.Verdicts {
		if v.Met {
			p.Met++
		}
	}
	return p
}

func (r *Results) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	logf("ERROR %s", msg)
	if len(r.Errors) < 50 {
		r.Errors = append(r.Errors, msg)
	}
}

// Machine is where the run happened.
type Machine struct {
	CPUs      int        `json:"nproc"`
	CPUModel  string     `json:"cpu_model"`
	Kernel    string     `json:"kernel"`
	GoVersion string     `json:"go_version"`
	MemoryMiB int        `json:"memory_mib"`
	LoadStart [3]float64 `json:"loadavg_start"`
	LoadEnd   [3]float64 `json:"loadavg_end"`
	NoFile    int        `json:"ulimit_nofile"`
	// InotifyMaxUserInstances is fs.inotify.max_user_instances during the
	// run: every aion-exec with AION_TEMPLATES_DIR holds one inotify
	// instance, counted per user.
	InotifyMaxUserInstances int `json:"inotify_max_user_instances"`
}

// Settings are the run's parameters.
type Settings struct {
	Instances       int     `json:"instances"`
	Secrets         int     `json:"secrets"`
	FieldsPerSecret int     `json:"fields_per_secret"`
	IntervalS       float64 `json:"poll_interval_s"`
	OutageS         float64 `json:"outage_s"`
	Rotations       int     `json:"rotations"`
	SteadyS         float64 `json:"steady_s"`
	MarginS         float64 `json:"margin_s"`
	StartupTimeoutS float64 `json:"startup_timeout_s"`
	Storage         string  `json:"vault_storage"`
	TLS             bool    `json:"tls"`
	VaultAddr       string  `json:"vault_addr"`
	AionVersion     string  `json:"aion_exec_version"`
	VaultVersion    string  `json:"vault_version"`
}

// Start is the launch of the whole fleet at once.
type Start struct {
	LaunchAt        time.Time `json:"launch_at"`
	LaunchLoopMs    float64   `json:"launch_loop_ms"` // forking all of them
	LastChildAt     time.Time `json:"last_child_at"`
	SpreadS         float64   `json:"spread_s"` // first fork → last child start
	LaunchToChildMs Stats     `json:"launch_to_child_ms"`
	Started         int       `json:"started"`
	Exited          int       `json:"exited_before_child"`
}

// Steady is the steady window.
type Steady struct {
	From              time.Time      `json:"from"`
	To                time.Time      `json:"to"`
	WindowS           float64        `json:"window_s"`
	Requests          int            `json:"requests"`
	Rate              float64        `json:"requests_per_s"`
	NominalRate       float64        `json:"nominal_requests_per_s"` // instances × secrets / interval
	BusiestSecond     int            `json:"busiest_second"`         // of the window, whole seconds
	PerSecond         Stats          `json:"per_second"`             // requests in each whole second of the window
	BusiestSliding    int            `json:"busiest_sliding_second"` // most requests in any 1 s of the window
	LatencyMs         Stats          `json:"vault_latency_ms"`       // request → response, audit log
	ByPath            map[string]int `json:"by_path"`
	VaultCPUPct       float64        `json:"vault_cpu_pct_of_core"`
	AionCPUPct        float64        `json:"aion_exec_cpu_pct_of_core"` // all instances together
	ChildCPUPct       float64        `json:"children_cpu_pct_of_core"`
	RSS               rssSample      `json:"rss"` // at the window's end
	TotalRSSSeriesKiB []int          `json:"aion_exec_total_rss_series_kib"`
}

// rssSample is one reading of every process's VmRSS.
type rssSample struct {
	At                  time.Time `json:"at"`
	AionPerInstanceKiB  Stats     `json:"aion_exec_per_instance_kib"`
	AionHWMKiB          Stats     `json:"aion_exec_vmhwm_kib"`
	AionTotalKiB        int       `json:"aion_exec_total_kib"`
	AionAnonKiB         Stats     `json:"aion_exec_rss_anon_kib"`
	AionAnonTotalKiB    int       `json:"aion_exec_rss_anon_total_kib"`
	AionPssTotalKiB     int       `json:"aion_exec_pss_total_kib"`
	ChildPssTotalKiB    int       `json:"children_pss_total_kib"`
	ChildPerInstanceKiB Stats     `json:"child_per_instance_kib"`
	ChildTotalKiB       int       `json:"children_total_kib"`
	VaultKiB            int       `json:"vault_kib"`
	VaultHWMKiB         int       `json:"vault_vmhwm_kib"`
}

// Rotation is one KV write and the SIGHUPs it caused.
type Rotation struct {
	N            int       `json:"n"`
	Secret       string    `json:"secret"`
	AfterOutage  bool      `json:"after_outage"`
	WrittenAt    time.Time `json:"written_at"`
	WindowS      float64   `json:"window_s"` // hups counted in [write, write+window)
	LimitS       float64   `json:"limit_s"`  // interval + margin
	Alive        int       `json:"alive"`
	Reached      int       `json:"reached"`
	Hups         int       `json:"hups"`
	Missing      int       `json:"missing"`
	MissingNames []string  `json:"missing_names,omitempty"`
	Extra        int       `json:"children_with_more_than_one"`
	Late         int       `json:"later_than_limit"`
	LatencyMs    Stats     `json:"write_to_hup_ms"`
	Latencies    []float64 `json:"latencies_ms"` // each signalled child's first hup
}

// Outage is Vault stopped, down, started and unsealed, and the fleet's
// return.
type Outage struct {
	StopAt         time.Time `json:"sigterm_at"`
	DownAt         time.Time `json:"down_at"`
	StartAt        time.Time `json:"start_at"`
	ListenAt       time.Time `json:"listening_at"`
	ActiveAt       time.Time `json:"unsealed_active_at"`
	FirstRequestAt time.Time `json:"first_fleet_request_at"`
	DownS          float64   `json:"down_s"`
	UnavailableS   float64   `json:"sigterm_to_first_request_s"`
	// AfterSeries counts the fleet's requests per second from the first
	// one Vault served after its start.
	AfterSeries           []int   `json:"after_series"`
	FirstSecond           int     `json:"first_second"`
	RatioNominal          float64 `json:"ratio_to_nominal"`
	RatioMeasured         float64 `json:"ratio_to_measured_steady"`
	MaxSecond             int     `json:"busiest_second"`
	MaxSecondIndex        int     `json:"busiest_second_index"`
	BusiestSliding        int     `json:"busiest_sliding_second"` // most requests in any 1 s of the 30 s after
	MaxRatioNominal       float64 `json:"busiest_ratio_to_nominal"`
	InstancesReadingAgain int     `json:"instances_reading_again"`
	// FirstRequestBySecond counts instances by the second (after the first
	// request served) of their own first request; the last bin holds the
	// rest.
	FirstRequestBySecond []int   `json:"instances_by_second_of_first_request"`
	LatencyMsBySecond    []Stats `json:"vault_latency_ms_by_second"`
	VaultCPUPctAfter     float64 `json:"vault_cpu_pct_first_30s"`
}

// Integrity is what must not have happened.
type Integrity struct {
	OneStart        int         `json:"children_with_one_start"`
	OtherStarts     int         `json:"children_without_exactly_one_start"`
	HupsAsRotations int         `json:"children_with_one_hup_per_rotation"`
	TermsBeforeStop int         `json:"terms_before_stop"`
	EarlyExitCount  int         `json:"aion_exec_exits_before_stop"`
	EarlyExits      []EarlyExit `json:"early_exits,omitempty"`
}

// EarlyExit is an aion-exec that ended before the stop.
type EarlyExit struct {
	Instance     string  `json:"instance"`
	Code         int     `json:"code"`
	AfterLaunchS float64 `json:"after_launch_s"`
	LogTail      string  `json:"log_tail"`
}

// Logs summarises the instances' logs.
type Logs struct {
	InstancesDegraded  int       `json:"instances_logging_read_failed"`
	InstancesRecovered int       `json:"instances_logging_read_recovered"`
	ReadFailedLines    int       `json:"read_failed_lines"`
	ReadRecoveredLines int       `json:"read_recovered_lines"`
	WarnOrError        []LogLine `json:"warn_or_error_lines"`
}

// LogLine is a distinct warning or error message and how often it came.
type LogLine struct {
	Line  string `json:"msg"`
	Count int    `json:"count"`
}

// Series is the fleet's requests per second over the run.
type Series struct {
	T0        time.Time `json:"t0"`
	PerSecond []int     `json:"per_second"`
}

// Verdict is one target of the issue.
type Verdict struct {
	What     string `json:"what"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Stats summarises samples.
type Stats struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

func stats(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Stats{N: len(s), Min: s[0], Median: quantile(s, 0.5), P90: quantile(s, 0.9), P99: quantile(s, 0.99), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

// quantile of sorted s, linear between closest ranks.
func quantile(s []float64, q float64) float64 {
	if len(s) == 1 {
		return s[0]
	}
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// verdicts sets the targets against the numbers.
func (r *Results) verdicts() {
	n := r.Settings.Instances
	exact, within := true, true
	maxLat := 0.0
	var rs []string
	for _, rot := range r.Rotations {
		if rot.Reached != n || rot.Extra > 0 || rot.Missing > 0 {
			exact = false
		}
		if rot.Late > 0 || rot.Reached == 0 {
			within = false
		}
		maxLat = math.Max(maxLat, rot.LatencyMs.Max)
		rs = append(rs, fmt.Sprintf("%d/%d", rot.Reached-rot.Extra, n))
	}
	limit := r.Settings.IntervalS + r.Settings.MarginS
	r.Verdicts = append(r.Verdicts,
		Verdict{"exactly one SIGHUP per child per rotation", fmt.Sprintf("%d of %d children, every rotation", n, n),
			fmt.Sprintf("exactly one: %s (rotations 1–%d, the last after the outage)", strings.Join(rs, ", "), len(r.Rotations)), exact},
		Verdict{"write → SIGHUP, every child", fmt.Sprintf("≤ %.0f s (one interval + %.0f s margin)", limit, r.Settings.MarginS),
			fmt.Sprintf("max %.2f s", maxLat/1000), within},
	)
	o := r.Outage
	r.Verdicts = append(r.Verdicts,
		Verdict{"requests in the first second after recovery", fmt.Sprintf("< 3× steady (%.0f/s: < %.0f)", r.Steady.NominalRate, 3*r.Steady.NominalRate),
			fmt.Sprintf("%d = %.2f× (busiest second of the next 30: %d = %.2f×; busiest 1 s window anywhere in them: %d = %.2f×)",
				o.FirstSecond, o.RatioNominal, o.MaxSecond, o.MaxRatioNominal, o.BusiestSliding, float64(o.BusiestSliding)/max(1, r.Steady.NominalRate)),
			!o.FirstRequestAt.IsZero() && o.RatioNominal < 3},
	)
	in := r.Integrity
	r.Verdicts = append(r.Verdicts,
		Verdict{"no child restarted or exited; no aion-exec exited", fmt.Sprintf("%d children with one start, 0 exits", n),
			fmt.Sprintf("%d with one start, %d terms before the stop, %d aion-exec exits", in.OneStart, in.TermsBeforeStop, in.EarlyExitCount),
			in.OneStart == n && in.TermsBeforeStop == 0 && in.EarlyExitCount == 0},
	)
	post := Rotation{}
	if len(r.Rotations) > 0 {
		post = r.Rotations[len(r.Rotations)-1]
	}
	r.Verdicts = append(r.Verdicts,
		Verdict{"every instance polls successfully after the outage", fmt.Sprintf("%d instances read again; the next rotation reaches %d", n, n),
			fmt.Sprintf("%d read again; rotation reached %d", o.InstancesReadingAgain, post.Reached),
			post.AfterOutage && o.InstancesReadingAgain == n && post.Reached == n},
	)
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
	s, m := r.Settings, r.Machine
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
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

	st := r.Steady
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

	if len(r.Repeats) > 0 {
		w("Other runs of the same benchmark on this machine (the table above is the last one):\n\n| run | first second after recovery | steady: busiest second | Vault CPU steady | aion-exec RSS median | write → SIGHUP max | targets met |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, p := range r.Repeats {
			w("| %s, %d instances | %d = %.2f× | %d | %.1f%% | %.1f MiB | %.2f s | %d of %d |\n", p.When.Format("15:04 UTC"), p.Instances, p.FirstSecond, p.RatioNominal,
				p.SteadyBusiest, p.VaultCPUPct, mib(p.AionRSSMedian), p.MaxHupMs/1000, p.Met, p.Of)
		}
		w("\n")
	}
	herd(&b, r)
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

// herd reads the recovery against the steady window: how lumpy the steady
// state itself is, how many instances came back in the first second, and
// how busy Vault was.
func herd(b *strings.Builder, r *Results) {
	o, st, s := r.Outage, r.Steady, r.Settings
	if len(o.FirstRequestBySecond) == 0 || st.NominalRate == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
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
