package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

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

// live is one job's wrapper while it supervises, and its RSS samples.
type live struct {
	job
	r       *running
	started time.Time
	samples []int
	at      []time.Time
	err     error
}

// superviseAll starts every job's wrapper, lets them all supervise for
// b.superviseFor with polling on, sampling each wrapper's RSS every second,
// then reads the audit log per token. The steady state is the last
// b.steady: median RSS there, requests per poll cycle there.
func (b *bench) superviseAll(ctx context.Context, jobs []job) ([]SuperviseResult, []error) {
	off := b.audit.size()
	ls, errs := b.startJobs(jobs)
	defer func() {
		for _, l := range ls {
			b.stop(l.r)
		}
	}()
	end := time.Now().Add(b.superviseFor)
	if err := sampleRSS(ctx, ls, end); err != nil {
		return nil, append(errs, err)
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

// startJobs starts the jobs' wrappers one after another, each once the
// previous child runs, so that their start-ups do not pile up.
func (b *bench) startJobs(jobs []job) ([]*live, []error) {
	var ls []*live
	var errs []error
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
	return ls, errs
}

// sampleRSS samples every running wrapper's RSS once a second until end.
func sampleRSS(ctx context.Context, ls []*live, end time.Time) error {
	for i := 0; time.Now().Before(end) && i < 100000; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
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
	return nil
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
