package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// rotations rotates secrets, stops Vault for the outage, rotates once more
// after it and samples the fleet's memory at the end.
func (f *fleet) rotations(ctx context.Context, o options) error {
	res := f.res
	window := 2 * o.interval
	for r := 1; r <= o.rotations; r++ {
		rot, err := f.rotate(ctx, r, (r-1)%o.secrets+1, window, o.interval+o.margin)
		if err != nil {
			return err
		}
		res.Rotations = append(res.Rotations, rot)
	}
	if err := f.outage(ctx, o.outage); err != nil {
		return err
	}
	rot, err := f.rotate(ctx, o.rotations+1, o.rotations%o.secrets+1, window, o.interval+o.margin)
	if err != nil {
		return err
	}
	rot.AfterOutage = true
	res.Rotations = append(res.Rotations, rot)
	res.EndRSS = f.sampleRSS()
	logf("after the run: aion-exec RSS median %.1f MiB, total %.0f MiB", mib(res.EndRSS.AionPerInstanceKiB.Median), mib(float64(res.EndRSS.AionTotalKiB)))
	return nil
}

// rotate writes secret s anew and waits the window; then each child must
// have exactly one hup in it, within limit of the write.
func (f *fleet) rotate(ctx context.Context, r, s int, window, limit time.Duration) (Rotation, error) {
	rot := Rotation{N: r, Secret: kit.SecretName(s), LimitS: limit.Seconds(), WindowS: window.Seconds()}
	tw, err := writeSecret(ctx, f.vault.api, s)
	if err != nil {
		return rot, fmt.Errorf("rotation %d: %w", r, err)
	}
	rot.WrittenAt = tw
	rot.Alive = len(f.alive())
	if err := f.waitHups(ctx, &rot, window); err != nil {
		return rot, err
	}
	f.tally(&rot, tw.Add(window), limit)
	logf("rotation %d (%s): %d of %d children signalled, %d with more than one hup, %d later than %s; write → hup median %.0f ms p90 %.0f max %.0f",
		r, rot.Secret, rot.Reached, len(f.insts), rot.Extra, rot.Late, limit, rot.LatencyMs.Median, rot.LatencyMs.P90, rot.LatencyMs.Max)
	return rot, nil
}

// waitHups waits for every child's hup (logged when the last arrives),
// then to the end of the window: a second hup would show in it, since
// every instance polls at least once more.
func (f *fleet) waitHups(ctx context.Context, rot *Rotation, window time.Duration) error {
	tw := rot.WrittenAt
	reportedAll := false
	for time.Since(tw) < window {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		if !reportedAll {
			got := 0
			for _, es := range f.allEvents() {
				if count(es, "hup", tw) > 0 {
					got++
				}
			}
			if got >= rot.Alive {
				reportedAll = true
				logf("rotation %d (%s): all %d children got SIGHUP after %.1f s", rot.N, rot.Secret, got, time.Since(tw).Seconds())
			}
		}
	}
	return nil
}

// tally counts each child's hups from the write to end: the first one's
// latency, whether it came later than limit, none or more than one.
func (f *fleet) tally(rot *Rotation, end time.Time, limit time.Duration) {
	tw := rot.WrittenAt
	var lat []float64
	for k, es := range f.allEvents() {
		n := 0
		for _, e := range es {
			if e.Kind != "hup" || e.At.Before(tw) || !e.At.Before(end) {
				continue
			}
			n++
			if n == 1 {
				d := e.At.Sub(tw)
				lat = append(lat, ms(d))
				if d > limit {
					rot.Late++
				}
			}
		}
		switch {
		case n == 0:
			rot.Missing++
			if len(rot.MissingNames) < 20 {
				rot.MissingNames = append(rot.MissingNames, f.insts[k].name)
			}
		case n > 1:
			rot.Extra++
		}
		rot.Hups += n
	}
	rot.Reached = len(lat)
	rot.LatencyMs, rot.Latencies = stats(lat), lat
}

// outage stops Vault, waits, starts and unseals it, and watches the
// recovery for three intervals.
func (f *fleet) outage(ctx context.Context, d time.Duration) error {
	o := &f.res.Outage
	o.StopAt = time.Now()
	logf("outage: stopping Vault (SIGTERM)")
	if err := f.vault.stop(30 * time.Second); err != nil {
		f.res.fail("%v", err)
	}
	o.DownAt = time.Now()
	if err := sleep(ctx, d); err != nil {
		return err
	}
	o.StartAt = time.Now()
	logf("outage: starting Vault again after %.1f s down", o.StartAt.Sub(o.DownAt).Seconds())
	if err := f.vault.start(); err != nil {
		return err
	}
	if _, err := f.vault.waitListening(ctx, 60*time.Second); err != nil {
		return err
	}
	o.ListenAt = time.Now()
	if err := f.vault.unseal(ctx, 60*time.Second); err != nil {
		return err
	}
	o.ActiveAt = time.Now()
	logf("outage: Vault listening after %.2f s, unsealed and active after %.2f s", o.ListenAt.Sub(o.StartAt).Seconds(), o.ActiveAt.Sub(o.StartAt).Seconds())
	if err := sleep(ctx, 3*f.interval); err != nil {
		return err
	}
	if p, err := readProc(f.vault.pid()); err == nil {
		o.VaultCPUPctAfter = pct(p.CPUTicks, time.Since(o.StartAt).Seconds())
	}
	return nil
}
