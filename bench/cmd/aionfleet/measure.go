package main

import (
	"context"
	"errors"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// launch starts every instance at once and waits, bounded, until every
// child started or its aion-exec exited.
func (f *fleet) launch(ctx context.Context) error {
	res := f.res
	logf("launching %d instances", f.n)
	res.Start.LaunchAt = time.Now()
	for _, in := range f.insts {
		if err := in.start(); err != nil {
			res.fail("launch %s: %v", in.name, err)
		}
	}
	res.Start.LaunchLoopMs = ms(time.Since(res.Start.LaunchAt))
	if err := f.waitStarted(ctx, f.startupTimeout+60*time.Second); err != nil {
		return err
	}
	logf("started: %d of %d children in %.1f s (launch → child start median %.0f ms, max %.0f ms); %d instances exited",
		res.Start.Started, f.n, res.Start.SpreadS, res.Start.LaunchToChildMs.Median, res.Start.LaunchToChildMs.Max, res.Start.Exited)
	if res.Start.Started == 0 {
		return errors.New("no child started")
	}
	return nil
}

// waitStarted waits until every instance's child started or its aion-exec
// exited, bounded.
func (f *fleet) waitStarted(ctx context.Context, timeout time.Duration) error {
	res := f.res
	deadline := time.Now().Add(timeout)
	for {
		evs := f.allEvents()
		started, exited := 0, 0
		for k, in := range f.insts {
			switch {
			case childPID(evs[k]) != 0:
				started++
			case in.Exited():
				exited++
			}
		}
		if started+exited == len(f.insts) || time.Now().After(deadline) || ctx.Err() != nil {
			var lat []float64
			var last time.Time
			for k, in := range f.insts {
				for _, e := range evs[k] {
					if e.Kind == "start" {
						lat = append(lat, ms(e.At.Sub(in.T0)))
						if e.At.After(last) {
							last = e.At
						}
						if e.NVars != f.secrets*kit.Fields {
							res.fail("%s: child started with %d variables, want %d", in.name, e.NVars, f.secrets*kit.Fields)
						}
						break
					}
				}
			}
			res.Start.Started, res.Start.Exited = started, exited
			res.Start.LaunchToChildMs = stats(lat)
			res.Start.LastChildAt = last
			if !last.IsZero() {
				res.Start.SpreadS = last.Sub(res.Start.LaunchAt).Seconds()
			}
			if started+exited < len(f.insts) {
				res.fail("%d instances neither started a child nor exited within %s", len(f.insts)-started-exited, timeout)
			}
			return ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// alive are the instances whose aion-exec still runs.
func (f *fleet) alive() []*instance {
	var out []*instance
	for _, in := range f.insts {
		if !in.Exited() {
			out = append(out, in)
		}
	}
	return out
}

// steadyWindow measures Vault's and the fleet's CPU over the window and
// samples RSS every 10 s.
func (f *fleet) steadyWindow(ctx context.Context, d time.Duration) error {
	res := f.res
	logf("steady window: %s", d)
	sw := &res.Steady
	sw.From = time.Now()
	v0, _ := readProc(f.vault.pid())
	a0, c0 := f.fleetTicks()
	var last rssSample
	for t := time.Duration(0); ; t += 10 * time.Second {
		last = f.sampleRSS()
		sw.TotalRSSSeriesKiB = append(sw.TotalRSSSeriesKiB, last.AionTotalKiB)
		if t+10*time.Second > d {
			break
		}
		if err := sleep(ctx, time.Until(sw.From.Add(t+10*time.Second))); err != nil {
			return err
		}
	}
	if err := sleep(ctx, time.Until(sw.From.Add(d))); err != nil {
		return err
	}
	sw.To = time.Now()
	v1, _ := readProc(f.vault.pid())
	a1, c1 := f.fleetTicks()
	secs := sw.To.Sub(sw.From).Seconds()
	sw.WindowS = secs
	sw.VaultCPUPct = pct(v1.CPUTicks-v0.CPUTicks, secs)
	sw.AionCPUPct = pct(a1-a0, secs)
	sw.ChildCPUPct = pct(c1-c0, secs)
	sw.RSS = last
	logf("steady: Vault CPU %.1f%% of a core, all aion-exec %.1f%%; aion-exec RSS median %.1f MiB p90 %.1f max %.1f, total %.0f MiB; Vault RSS %.0f MiB",
		sw.VaultCPUPct, sw.AionCPUPct, mib(last.AionPerInstanceKiB.Median), mib(last.AionPerInstanceKiB.P90), mib(last.AionPerInstanceKiB.Max),
		mib(float64(last.AionTotalKiB)), mib(float64(last.VaultKiB)))
	return nil
}

func pct(ticks int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(ticks) / clkTck / secs * 100
}

// fleetTicks sums utime+stime of every live aion-exec and child.
func (f *fleet) fleetTicks() (aion, child int64) {
	evs := f.allEvents()
	for _, in := range f.alive() {
		if p, err := readProc(in.Cmd.Process.Pid); err == nil {
			aion += p.CPUTicks
		}
	}
	for k := range f.insts {
		if pid := childPID(evs[k]); pid != 0 && kit.IsExe(pid, f.child) {
			if p, err := readProc(pid); err == nil {
				child += p.CPUTicks
			}
		}
	}
	return aion, child
}

// sampleRSS reads VmRSS of every live aion-exec, child and Vault.
func (f *fleet) sampleRSS() rssSample {
	var s rssSample
	s.At = time.Now()
	evs := f.allEvents()
	var per, hwm, anon []float64
	for _, in := range f.alive() {
		p, err := readProc(in.Cmd.Process.Pid)
		if err != nil {
			continue
		}
		per = append(per, float64(p.RSSKiB))
		hwm = append(hwm, float64(p.HWMKiB))
		anon = append(anon, float64(p.AnonKiB))
		s.AionTotalKiB += p.RSSKiB
		s.AionAnonTotalKiB += p.AnonKiB
		s.AionPssTotalKiB += pssKiB(in.Cmd.Process.Pid)
	}
	var ch []float64
	for k := range f.insts {
		if pid := childPID(evs[k]); pid != 0 && kit.IsExe(pid, f.child) {
			if p, err := readProc(pid); err == nil {
				ch = append(ch, float64(p.RSSKiB))
				s.ChildTotalKiB += p.RSSKiB
				s.ChildPssTotalKiB += pssKiB(pid)
			}
		}
	}
	s.AionPerInstanceKiB, s.AionHWMKiB, s.AionAnonKiB, s.ChildPerInstanceKiB = stats(per), stats(hwm), stats(anon), stats(ch)
	if p, err := readProc(f.vault.pid()); err == nil {
		s.VaultKiB, s.VaultHWMKiB = p.RSSKiB, p.HWMKiB
	}
	return s
}
