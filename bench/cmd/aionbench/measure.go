package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// event is one line the child wrote.
type event = kit.Event

func readEvents(path string) []event { return kit.ReadEvents(path) }

// running is one wrapper process under measurement.
type running struct {
	*kit.Proc
	tool   string
	events string
	log    string
}

var errExited = errors.New("wrapper exited")

// start launches tool t for n secrets and returns at once.
func (b *bench) start(t tool, n int, v Variant, tag string) (*running, error) {
	dir := filepath.Join(b.work, fmt.Sprintf("%s-%d-%s", t.Name, n, v))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b.seq++
	events := filepath.Join(b.work, "events", fmt.Sprintf("%04d-%s-%s-%d.log", b.seq, tag, t.Name, n))
	cmd, err := t.command(b, n, v, dir, events)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("wrapper-%04d.log", b.seq))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r := &running{Proc: kit.NewProc(cmd), tool: t.Name, events: events, log: logPath}
	err = r.Start(lf)
	lf.Close() // the wrapper has its own copy
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", t.Name, err)
	}
	b.track(r, true)
	return r, nil
}

// logTail is the end of the wrapper's output, for error messages.
func (r *running) logTail() string { return kit.Tail(r.log, 1500) }

// waitEvent polls the events file (every millisecond: the timestamps come
// from the child, so polling only delays noticing, never the measurement).
func (r *running) waitEvent(timeout time.Duration, match func(event) bool) (event, error) {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		for _, e := range readEvents(r.events) {
			if match(e) {
				return e, nil
			}
		}
		if r.Exited() {
			return event{}, fmt.Errorf("%s: %w (%v) before the event; its log: %s", r.tool, errExited, r.Err, r.logTail())
		}
		if time.Now().After(deadline) {
			return event{}, fmt.Errorf("%s: no child event within %s; its log: %s", r.tool, timeout, r.logTail())
		}
		time.Sleep(time.Millisecond)
	}
}

// stop asks the wrapper to stop (SIGTERM, which each forwards to the
// child), then kills its process group and any child it started elsewhere.
func (b *bench) stop(r *running) {
	defer b.track(r, false)
	if !r.Exited() {
		_ = r.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.Done:
		case <-time.After(15 * time.Second):
			fmt.Fprintf(os.Stderr, "aionbench: %s did not stop in 15s; killing it\n", r.tool)
		}
	}
	pgid := r.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !r.Exited() {
		select {
		case <-r.Done:
		case <-time.After(5 * time.Second):
		}
	}
	for _, e := range readEvents(r.events) {
		if e.Kind == "start" && kit.IsExe(e.PID, b.child) {
			_ = syscall.Kill(e.PID, syscall.SIGKILL)
		}
	}
}

func (b *bench) track(r *running, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.procs[r] = true
	} else {
		delete(b.procs, r)
	}
}

// stopAll is the cleanup on interrupt.
func (b *bench) stopAll() {
	b.mu.Lock()
	rs := make([]*running, 0, len(b.procs))
	for r := range b.procs {
		rs = append(rs, r)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() { b.stop(r) })
	}
	wg.Wait()
}

// procStatus reads VmRSS and VmHWM (KiB) of pid.
func procStatus(pid int) (rss, hwm int, err error) {
	st, err := kit.ProcStatus(pid)
	return st["VmRSS"], st["VmHWM"], err
}

// LaunchRun is one launch → child start measurement.
type LaunchRun struct {
	Ms       float64        `json:"ms"`
	Requests int            `json:"requests"`
	ByPath   map[string]int `json:"by_path"`
	// The launch in three phases, from the audit log's clock: launch →
	// Vault receives the first request; → Vault answers the last request
	// before the child starts; → the child starts.
	BeforeVaultMs float64 `json:"before_vault_ms"`
	VaultMs       float64 `json:"vault_ms"`
	AfterVaultMs  float64 `json:"after_vault_ms"`
}

// launchOnce starts the tool, waits for the child's start line, checks the
// child got every variable, with count counts the Vault requests made before
// it started, and stops everything.
func (b *bench) launchOnce(t tool, n int, count bool) (LaunchRun, error) {
	if t.inProcess != nil {
		t0 := time.Now()
		if err := t.inProcess(b, n); err != nil {
			return LaunchRun{}, err
		}
		return LaunchRun{Ms: float64(time.Since(t0)) / 1e6}, nil
	}
	off := b.audit.size()
	r, err := b.start(t, n, Reload, "launch")
	if err != nil {
		return LaunchRun{}, err
	}
	defer b.stop(r)
	e, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
	if err != nil {
		return LaunchRun{}, err
	}
	if want := b.wantVars(t, n); e.NVars != want {
		return LaunchRun{}, fmt.Errorf("%s with %d secrets: child got %d bench variables, want %d", t.Name, n, e.NVars, want)
	}
	run := LaunchRun{Ms: float64(e.At.Sub(r.T0)) / 1e6}
	if !count {
		return run, nil
	}
	es, err := b.audit.requests(off)
	if err != nil {
		return LaunchRun{}, err
	}
	es = only(es, displayName(t.Name, n))
	run.Requests, run.ByPath = countBetween(es, r.T0, e.At)
	if first, last := vaultSpan(es, r.T0, e.At); !first.IsZero() && !last.IsZero() {
		run.BeforeVaultMs = float64(first.Sub(r.T0)) / 1e6
		run.VaultMs = float64(last.Sub(first)) / 1e6
		run.AfterVaultMs = float64(e.At.Sub(last)) / 1e6
	}
	return run, nil
}

// exitOnce starts the tool, waits for the child's start line, then ends the
// child itself (SIGTERM straight to it: the child writes its term line, with
// its own clock, and exits 0) and times how long the wrapper takes to exit
// after that. For the floor, the child is the process waited for: its figure
// is the instrument's own share (process exit and the wakeup of Wait).
func (b *bench) exitOnce(t tool, n int) (float64, error) {
	r, err := b.start(t, n, Reload, "exit")
	if err != nil {
		return 0, err
	}
	defer b.stop(r)
	e, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(e.PID, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("end the child of %s: %w", t.Name, err)
	}
	select {
	case <-r.Done:
	case <-time.After(b.startTimeout):
		return 0, fmt.Errorf("%s did not exit within %s of its child: %s", t.Name, b.startTimeout, r.logTail())
	}
	term, err := r.waitEvent(time.Second, func(x event) bool { return x.Kind == "term" && x.PID == e.PID })
	if err != nil {
		return 0, err
	}
	return float64(r.ExitAt.Sub(term.At)) / 1e6, nil
}

func (b *bench) wantVars(t tool, n int) int {
	if t.Name == "floor" || t.inProcess != nil {
		return 0
	}
	return n * kit.Fields
}

// Supervision is what a wrapper costs while it supervises with polling on.
type Supervision struct {
	PeakRSSKiB   int                `json:"peak_rss_kib"`   // VmHWM at the end, or the highest sample
	SteadyRSSKiB int                `json:"steady_rss_kib"` // median VmRSS over the steady window (the last -steady)
	EndRSSKiB    int                `json:"end_rss_kib"`
	RSSSamples   []int              `json:"rss_samples_kib"` // one a second from the child's start
	Cycles       int                `json:"steady_cycles"`   // poll cycles of s001 counted
	WindowS      float64            `json:"steady_window_s"` // their span
	SteadyReqs   int                `json:"steady_requests"`
	PerInterval  float64            `json:"requests_per_cycle"` // per poll of one secret
	PerIntByPath map[string]float64 `json:"per_cycle_by_path"`
	ReadPeriodS  float64            `json:"s001_read_period_s"` // mean time between reads of one secret
}

// job is one wrapper at one size.
type job struct {
	t tool
	n int
}

// superviseAll starts every job's wrapper, lets them all supervise for
// b.superviseFor with polling on, sampling each wrapper's RSS every second,
// then reads the audit log per token. The steady state is the last
// b.steady: median RSS there, requests per poll cycle there.
func (b *bench) superviseAll(ctx context.Context, jobs []job) ([]SuperviseResult, []error) {
	type live struct {
		job
		r       *running
		started time.Time
		samples []int
		at      []time.Time
		err     error
	}
	var errs []error
	off := b.audit.size()
	var ls []*live
	defer func() {
		for _, l := range ls {
			b.stop(l.r)
		}
	}()
	// Started one after another, each once the previous child runs, so
	// that their start-ups do not pile up.
	for _, j := range jobs {
		r, err := b.start(j.t, j.n, Reload, "supervise")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s@%d: %w", j.t.Name, j.n, err))
			continue
		}
		l := &live{job: j, r: r}
		ls = append(ls, l)
		e, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
		if err != nil {
			l.err = err
			continue
		}
		l.started = e.At
	}
	end := time.Now().Add(b.superviseFor)
	for i := 0; time.Now().Before(end) && i < 100000; i++ {
		if ctx.Err() != nil {
			return nil, append(errs, ctx.Err())
		}
		now := time.Now()
		for _, l := range ls {
			if l.err != nil {
				continue
			}
			rss, _, err := procStatus(l.r.Cmd.Process.Pid)
			if err != nil || l.r.Exited() {
				l.err = fmt.Errorf("%s stopped while supervising: %v; its log: %s", l.t.Name, err, l.r.logTail())
				continue
			}
			l.samples, l.at = append(l.samples, rss), append(l.at, now)
		}
		time.Sleep(time.Second)
	}
	es, err := b.audit.requests(off)
	if err != nil {
		return nil, append(errs, err)
	}
	var out []SuperviseResult
	for _, l := range ls {
		if l.err != nil {
			errs = append(errs, fmt.Errorf("%s@%d: %w", l.t.Name, l.n, l.err))
			continue
		}
		s, err := b.summarise(l.r, l.t, l.n, l.samples, l.at, only(es, displayName(l.t.Name, l.n)), end)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s@%d: %w", l.t.Name, l.n, err))
			continue
		}
		out = append(out, SuperviseResult{Tool: l.t.Name, N: l.n, Supervision: s})
	}
	return out, errs
}

// summarise turns one wrapper's samples and audit entries into its
// Supervision.
func (b *bench) summarise(r *running, t tool, n int, samples []int, at []time.Time, es []auditEntry, end time.Time) (Supervision, error) {
	var s Supervision
	s.RSSSamples = samples
	from := end.Add(-b.steady)
	var steadyRSS []int
	for i, x := range samples {
		if !at[i].Before(from) {
			steadyRSS = append(steadyRSS, x)
		}
	}
	if len(steadyRSS) == 0 {
		return s, fmt.Errorf("no RSS sample in the steady window")
	}
	s.SteadyRSSKiB = int(median(floats(steadyRSS)))
	rss, hwm, err := procStatus(r.Cmd.Process.Pid)
	if err != nil {
		return s, err
	}
	// VmHWM is only brought up to date when memory is unmapped, not when
	// the Go runtime hands pages back with madvise: a sample can be higher.
	s.EndRSSKiB, s.PeakRSSKiB = rss, max(hwm, slices.Max(samples))
	// The steady window is cut to whole poll cycles, marked by the reads of
	// s001: from half an interval before its first read in the window to
	// half an interval before its last, so both edges fall between bursts.
	var ts []time.Time
	for _, t := range readTimes(es, "secret/data/bench/s001") {
		if !t.Before(from) && !t.After(end) {
			ts = append(ts, t)
		}
	}
	if len(ts) < 3 {
		return s, fmt.Errorf("%s read secret s001 %d times in the %s steady window; want at least 3", t.Name, len(ts), b.steady)
	}
	half := b.interval / 2
	cycles := len(ts) - 1
	n2, by := countBetween(es, ts[0].Add(-half), ts[len(ts)-1].Add(-half-time.Nanosecond))
	s.Cycles = cycles
	s.WindowS = ts[len(ts)-1].Sub(ts[0]).Seconds()
	s.ReadPeriodS = s.WindowS / float64(cycles)
	s.SteadyReqs = n2
	s.PerInterval = float64(n2) / float64(cycles)
	s.PerIntByPath = map[string]float64{}
	for k, v := range by {
		s.PerIntByPath[k] = float64(v) / float64(cycles)
	}
	return s, nil
}

// Propagation is KV write → child notified, over several writes.
type Propagation struct {
	Tool    string    `json:"tool"`
	Variant Variant   `json:"variant"`
	N       int       `json:"secrets"`
	Ms      []float64 `json:"ms"`
	Kinds   []string  `json:"kinds"` // hup or restart, per write
	Stats   Stats     `json:"stats"`
}

// propagate writes secret s001 several times, each at a random phase of
// the poll interval, and times each write to the child's SIGHUP or new start.
func (b *bench) propagate(ctx context.Context, t tool, n int, v Variant) (Propagation, error) {
	p := Propagation{Tool: t.Name, Variant: v, N: n}
	r, err := b.start(t, n, v, "change-"+string(v))
	if err != nil {
		return p, err
	}
	defer b.stop(r)
	first, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
	if err != nil {
		return p, err
	}
	cur := first
	time.Sleep(b.interval + time.Second) // past the first poll and any start-up debounce
	for w := 0; w < b.writes; w++ {
		time.Sleep(time.Duration(rand.Int64N(int64(b.interval))))
		tw := time.Now()
		if err := writeSecret(ctx, b.vault, 1); err != nil {
			return p, err
		}
		e, err := r.waitEvent(b.changeTimeout, func(e event) bool {
			return e.At.After(tw) && (e.Kind == "hup" || e.Kind == "start" && e.PID != cur.PID)
		})
		if err != nil {
			return p, fmt.Errorf("write %d: %w", w+1, err)
		}
		kind := e.Kind
		if e.Kind == "start" {
			kind = "restart"
			if e.Hash == cur.Hash {
				return p, fmt.Errorf("%s restarted the child without the new value", t.Name)
			}
			cur = e
		}
		p.Ms = append(p.Ms, float64(e.At.Sub(tw))/1e6)
		p.Kinds = append(p.Kinds, kind)
		// Let a restart settle (and a debounce expire) before the next write.
		time.Sleep(500 * time.Millisecond)
	}
	p.Stats = stats(p.Ms)
	return p, nil
}

// Stats summarises samples.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stats(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return Stats{N: len(s), Median: median(s), P90: s[(len(s)*9+9)/10-1], Min: s[0], Max: s[len(s)-1]}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func floats(xs []int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
