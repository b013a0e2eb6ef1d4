package main

import (
	"os"
	"sort"
	"strings"
	"time"
)

// analyzeAudit counts the fleet's requests: per second over the run, in
// the steady window, and around the recovery.
func (f *fleet) analyzeAudit(reqs []auditRequest) {
	res := f.res
	res.Steady.NominalRate = float64(f.n*f.secrets) / f.interval.Seconds()
	var fleetReqs []auditRequest
	for _, r := range reqs {
		if strings.HasPrefix(r.Who, "fleet-") {
			fleetReqs = append(fleetReqs, r)
		}
	}
	res.Series = perSecond(fleetReqs, res.Start.LaunchAt.Truncate(time.Second), res.StopAt)
	steadyRequests(&res.Steady, res.Series, fleetReqs, reqs)
	f.recovery(fleetReqs, reqs)
}

// perSecond counts reqs in each second from t0 to end.
func perSecond(reqs []auditRequest, t0, end time.Time) Series {
	series := make([]int, int(end.Sub(t0).Seconds())+2)
	for _, r := range reqs {
		if i := int(r.At.Sub(t0) / time.Second); i >= 0 && i < len(series) {
			series[i]++
		}
	}
	return Series{T0: t0, PerSecond: series}
}

// steadyRequests counts the fleet's requests in the steady window: by
// path, per whole second, in the busiest second anywhere, and Vault's
// latency.
func steadyRequests(sw *Steady, series Series, fleetReqs, reqs []auditRequest) {
	byPath := map[string]int{}
	for _, r := range fleetReqs {
		if !r.At.Before(sw.From) && r.At.Before(sw.To) {
			sw.Requests++
			byPath[r.Op+" "+pathClass(r.Path)]++
		}
	}
	sw.ByPath = byPath
	var secs []float64
	for i, c := range series.PerSecond {
		at := series.T0.Add(time.Duration(i) * time.Second)
		if !at.Before(sw.From) && !at.Add(time.Second).After(sw.To) {
			secs = append(secs, float64(c))
			sw.BusiestSecond = max(sw.BusiestSecond, c)
		}
	}
	sw.PerSecond = stats(secs)
	sw.BusiestSliding = busiestWindow(fleetReqs, sw.From, sw.To, time.Second)
	sw.LatencyMs = latencies(reqs, func(r auditRequest) bool { return !r.At.Before(sw.From) && r.At.Before(sw.To) })
	if sw.WindowS > 0 {
		sw.Rate = float64(sw.Requests) / sw.WindowS
	}
}

// recoverySeconds is how long after the recovery its requests are counted.
const recoverySeconds = 30

// recovery counts the fleet's requests from the first one Vault served
// after its start, and compares them with the steady rate.
func (f *fleet) recovery(fleetReqs, reqs []auditRequest) {
	res := f.res
	o, sw := &res.Outage, &res.Steady
	for _, r := range fleetReqs {
		if r.At.After(o.StartAt) && (o.FirstRequestAt.IsZero() || r.At.Before(o.FirstRequestAt)) {
			o.FirstRequestAt = r.At
		}
	}
	if o.FirstRequestAt.IsZero() {
		res.fail("no fleet request reached Vault after the outage")
		return
	}
	o.AfterSeries, o.InstancesReadingAgain = afterRecovery(fleetReqs, o.FirstRequestAt)
	o.FirstRequestBySecond = firstRequests(fleetReqs, o.FirstRequestAt, int(f.interval.Seconds())+1)
	for k := range 3 {
		from := o.FirstRequestAt.Add(time.Duration(k) * time.Second)
		o.LatencyMsBySecond = append(o.LatencyMsBySecond, latencies(reqs, func(r auditRequest) bool {
			return !r.At.Before(from) && r.At.Before(from.Add(time.Second))
		}))
	}
	o.FirstSecond = o.AfterSeries[0]
	for i, c := range o.AfterSeries {
		if c > o.MaxSecond {
			o.MaxSecond, o.MaxSecondIndex = c, i
		}
	}
	o.BusiestSliding = busiestWindow(fleetReqs, o.FirstRequestAt, o.FirstRequestAt.Add(recoverySeconds*time.Second), time.Second)
	nominal := sw.NominalRate
	o.RatioNominal = float64(o.FirstSecond) / nominal
	if sw.Rate > 0 {
		o.RatioMeasured = float64(o.FirstSecond) / sw.Rate
	}
	o.MaxRatioNominal = float64(o.MaxSecond) / nominal
	o.DownS = o.StartAt.Sub(o.DownAt).Seconds()
	o.UnavailableS = o.FirstRequestAt.Sub(o.StopAt).Seconds()
	logf("recovery: first second %d requests (%.2f× the nominal %.0f/s, %.2f× the measured %.1f/s); busiest second of 30: %d (+%d s); %d instances read again",
		o.FirstSecond, o.RatioNominal, nominal, o.RatioMeasured, sw.Rate, o.MaxSecond, o.MaxSecondIndex, o.InstancesReadingAgain)
}

// afterRecovery counts the fleet's requests in each second from first on,
// and the instances that read a secret again.
func afterRecovery(fleetReqs []auditRequest, first time.Time) (series []int, reading int) {
	series = make([]int, recoverySeconds)
	recovered := map[string]bool{}
	for _, r := range fleetReqs {
		d := r.At.Sub(first)
		if d >= 0 && d < recoverySeconds*time.Second {
			series[int(d/time.Second)]++
		}
		if d >= 0 && r.Op == "read" && strings.HasPrefix(r.Path, "secret/data/fleet/") {
			recovered[r.Who] = true
		}
	}
	return series, len(recovered)
}

// firstRequests counts the instances by the second, from first on, of
// their own first request; the last of the bins holds the rest. A fleet
// spread by its backoff would come evenly over an interval.
func firstRequests(fleetReqs []auditRequest, first time.Time, bins int) []int {
	firstOf := map[string]time.Time{}
	for _, r := range fleetReqs {
		if !r.At.Before(first) {
			if t, ok := firstOf[r.Who]; !ok || r.At.Before(t) {
				firstOf[r.Who] = r.At
			}
		}
	}
	out := make([]int, bins)
	for _, t := range firstOf {
		out[min(int(t.Sub(first)/time.Second), bins-1)]++
	}
	return out
}

// busiestWindow is the most requests in any window of length d that lies
// in [from, to), wherever it starts.
func busiestWindow(reqs []auditRequest, from, to time.Time, d time.Duration) int {
	var ts []time.Time
	for _, r := range reqs {
		if !r.At.Before(from) && r.At.Before(to) {
			ts = append(ts, r.At)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// latencies is Vault's time from request to response (both audit
// entries) of the fleet's requests that keep selects.
func latencies(reqs []auditRequest, keep func(auditRequest) bool) Stats {
	var xs []float64
	for _, r := range reqs {
		if strings.HasPrefix(r.Who, "fleet-") && !r.Answered.IsZero() && keep(r) {
			xs = append(xs, ms(r.Answered.Sub(r.At)))
		}
	}
	return stats(xs)
}

// pathClass folds the per-secret part of a path.
func pathClass(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && strings.HasPrefix(p, "secret/data/fleet/") {
		return p[:i] + "/*"
	}
	return p
}

// analyzeLogs counts, per instance, the log lines of a degraded and a
// recovered Vault, and collects the distinct error lines.
func (f *fleet) analyzeLogs() {
	l := &f.res.Logs
	distinct := map[string]int{}
	for _, in := range f.insts {
		b, _ := os.ReadFile(in.log)
		s := string(b)
		fails := strings.Count(s, "vault read failed")
		recs := strings.Count(s, "vault read recovered")
		if fails > 0 {
			l.InstancesDegraded++
		}
		if recs > 0 {
			l.InstancesRecovered++
		}
		l.ReadFailedLines += fails
		l.ReadRecoveredLines += recs
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				msg := line
				if i := strings.Index(line, "msg="); i >= 0 {
					msg = line[i:]
				}
				if len(msg) > 200 {
					msg = msg[:200]
				}
				distinct[msg]++
			}
		}
	}
	for m, c := range distinct {
		l.WarnOrError = append(l.WarnOrError, LogLine{Line: m, Count: c})
	}
	sort.Slice(l.WarnOrError, func(i, j int) bool { return l.WarnOrError[i].Count > l.WarnOrError[j].Count })
	if len(l.WarnOrError) > 15 {
		l.WarnOrError = l.WarnOrError[:15]
	}
}
