package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
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

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(kib float64) float64    { return kib / 1024 }

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, s := range strings.Fields(string(b)) {
		if i < 3 {
			l[i], _ = strconv.ParseFloat(s, 64)
		}
	}
	return l
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAvg()}
	m.CPUModel = kit.CPUModel()
	m.Kernel, m.MemoryMiB = kit.Kernel(), kit.MemoryMiB()
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = int(rl.Cur)
	}
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances"); err == nil {
		m.InotifyMaxUserInstances, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return m
}
