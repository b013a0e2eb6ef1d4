package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// key names one tool at one size, in errors and in b.broken.
func key(t tool, n int) string { return fmt.Sprintf("%s@%d", t.Name, n) }

// launches are one size's launch results by tool, made on first use.
type launches map[string]*LaunchResult

func (ls launches) of(t tool, n int) *LaunchResult {
	if ls[t.Name] == nil {
		ls[t.Name] = &LaunchResult{Tool: t.Name, N: n}
	}
	return ls[t.Name]
}

// measureLaunches is launch → child start at every size. Timed with the
// audit device off: it makes every Vault request slower (HMACs and a file
// write each), which is the instrument's cost, not the tools'. Tools are
// interleaved round by round so that a drift of the machine hits every
// tool alike. Then a few launches with the audit device on count the
// requests at start and split the launch into phases.
func (b *bench) measureLaunches(ctx context.Context, tools []tool, o options) error {
	for _, n := range o.sizes {
		ls := launches{}
		if err := b.setAudit(ctx, false); err != nil {
			return err
		}
		if err := b.timedLaunches(ctx, tools, n, o, ls); err != nil {
			return err
		}
		if err := b.setAudit(ctx, true); err != nil {
			return err
		}
		b.countedLaunches(tools, n, o.countedRuns, ls)
		for _, t := range tools {
			lr := ls[t.Name]
			if lr == nil || len(lr.Runs) == 0 {
				continue
			}
			summariseLaunch(lr)
			b.res.Launch = append(b.res.Launch, *lr)
			b.logf("launch %-16s %3d secrets: median %8.2f ms  p90 %8.2f ms  requests %d", t.Name, n, lr.Stats.Median, lr.Stats.P90, lr.StartReqs)
		}
	}
	return nil
}

// timedLaunches are the launches with the audit device off.
func (b *bench) timedLaunches(ctx context.Context, tools []tool, n int, o options, ls launches) error {
	for round := -1; round < o.runs; round++ { // round -1 warms caches up
		for _, t := range tools {
			if b.broken[key(t, n)] || t.Name == "vault-agent" && round >= o.agentRuns {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := b.launchOnce(t, n, false)
			if err != nil {
				b.fail("launch "+key(t, n), err)
				b.broken[key(t, n)] = true
				continue
			}
			if round >= 0 {
				ls.of(t, n).Runs = append(ls.of(t, n).Runs, r)
			}
		}
	}
	return nil
}

// countedLaunches are the launches with the audit device on (Vault
// Agent's: one).
func (b *bench) countedLaunches(tools []tool, n, rounds int, ls launches) {
	for round := 0; round < rounds; round++ {
		for _, t := range tools {
			if b.broken[key(t, n)] || t.inProcess != nil || t.Name == "vault-agent" && round >= 1 {
				continue
			}
			r, err := b.launchOnce(t, n, true)
			if err != nil {
				b.fail("counted launch "+key(t, n), err)
				b.broken[key(t, n)] = true
				continue
			}
			lr := ls.of(t, n)
			if lr.ByPath == nil {
				lr.ByPath = r.ByPath
			}
			lr.Counted = append(lr.Counted, r)
		}
	}
}

// summariseLaunch sets lr's statistics from its runs: the timed ones'
// times, the counted ones' requests and phases (medians).
func summariseLaunch(lr *LaunchResult) {
	var ms, cms, reqs, before, during, after []float64
	for _, r := range lr.Runs {
		ms = append(ms, r.Ms)
	}
	for _, r := range lr.Counted {
		cms = append(cms, r.Ms)
		reqs = append(reqs, float64(r.Requests))
		before, during, after = append(before, r.BeforeVaultMs), append(during, r.VaultMs), append(after, r.AfterVaultMs)
	}
	lr.Stats = stats(ms)
	lr.StartReqs = int(median(reqs))
	lr.CountedMs, lr.BeforeVaultMs, lr.VaultMs, lr.AfterVaultMs = median(cms), median(before), median(during), median(after)
}

// measureExits is child exit → wrapper exit, interleaved like the
// launches, at the smallest and the largest size (a wrapper may clean up
// per secret); aion-exec also without a watched templates directory.
func (b *bench) measureExits(ctx context.Context, tools []tool, o options) error {
	if err := b.setAudit(ctx, false); err != nil {
		return err
	}
	exitTools := tools
	if slices.ContainsFunc(tools, func(t tool) bool { return t.Name == "aion-exec" }) {
		exitTools = append(slices.Clone(tools), aionNoWatchTool(o.aionBin))
	}
	for _, n := range slices.Compact([]int{o.sizes[0], o.sizes[len(o.sizes)-1]}) {
		byTool, err := b.exitRounds(ctx, exitTools, n, o)
		if err != nil {
			return err
		}
		for _, t := range exitTools {
			if x := byTool[t.Name]; x != nil {
				x.Stats = stats(x.Runs)
				b.res.Exit = append(b.res.Exit, *x)
				b.logf("exit   %-16s %3d secrets: median %8.2f ms  p90 %8.2f ms", t.Name, n, x.Stats.Median, x.Stats.P90)
			}
		}
	}
	return nil
}

// exitRounds times the exits of every tool at one size, round by round.
func (b *bench) exitRounds(ctx context.Context, tools []tool, n int, o options) (map[string]*ExitResult, error) {
	byTool := map[string]*ExitResult{}
	for round := -1; round < o.runs; round++ {
		for _, t := range tools {
			if b.broken[key(t, n)] || t.inProcess != nil || t.Name == "vault-agent" && round >= o.agentRuns {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			x, err := b.exitOnce(t, n)
			if err != nil {
				b.fail("exit "+key(t, n), err)
				b.broken[key(t, n)] = true
				continue
			}
			if round < 0 {
				continue
			}
			if byTool[t.Name] == nil {
				byTool[t.Name] = &ExitResult{Tool: t.Name, N: n}
			}
			byTool[t.Name].Runs = append(byTool[t.Name].Runs, x)
		}
	}
	return byTool, nil
}

// measureSupervision is RSS and steady-state requests while supervising:
// every wrapper at every size at once, for minutes, since a Go wrapper's
// heap takes dozens of polls to reach its first collection. Each has its
// own token, so the audit log tells their requests apart.
func (b *bench) measureSupervision(ctx context.Context, tools []tool, sizes []int) error {
	var jobs []job
	for _, n := range sizes {
		for _, t := range tools {
			if t.Name == "floor" || t.inProcess != nil || b.broken[key(t, n)] {
				continue
			}
			jobs = append(jobs, job{t, n})
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.logf("supervising %d wrappers at once for %s", len(jobs), b.superviseFor)
	sups, errs := b.superviseAll(ctx, jobs)
	for _, err := range errs {
		b.fail("supervise", err)
	}
	for _, s := range sups {
		b.res.Supervise = append(b.res.Supervise, s)
		b.logf("supervise %-16s %3d secrets: RSS steady %6.1f MiB peak %6.1f MiB; requests per poll %.2f (a secret re-read every %.2f s)",
			s.Tool, s.N, mib(s.SteadyRSSKiB), mib(s.PeakRSSKiB), s.PerInterval, s.ReadPeriodS)
	}
	return nil
}

// measurePropagation is KV write → child notified, at size n, for every
// way each tool offers.
func (b *bench) measurePropagation(ctx context.Context, tools []tool, n int) error {
	for _, t := range tools {
		for _, v := range t.Variants {
			if t.inProcess != nil || b.broken[key(t, n)] {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p, err := b.propagate(ctx, t, n, v)
			if err != nil {
				b.fail(fmt.Sprintf("change %s %s", t.Name, v), err)
				continue
			}
			b.res.Propagation = append(b.res.Propagation, p)
			b.logf("change %-16s %-7s: median %7.0f ms  max %7.0f ms  (%s)", t.Name, v, p.Stats.Median, p.Stats.Max, strings.Join(slices.Compact(slices.Clone(p.Kinds)), ","))
		}
	}
	return nil
}
