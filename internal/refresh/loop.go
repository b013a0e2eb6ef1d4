package refresh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/filewatch"
	"github.com/aionos/aion-exec/internal/statelog"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// Run is the refresh actor of a supervised run: it runs a pass at every
// poll (every Interval, less up to 10% jitter, timed from the previous
// poll's start so that a change reaches the child within one interval) and
// at every settled edit of the templates directory, and hands each decision
// that asks for something to apply. A failing pass keeps the last good
// render and is logged once per state; a Vault that is down is retried with
// backoff. It returns nil when ctx ends, or an error when the templates
// directory cannot be watched at start: edits that silently stop arriving
// are worse than a restart. A directory lost later is watched again when
// it is back, and its return is an edit (filewatch).
func (r *Refresher) Run(ctx context.Context, apply func(Decision)) error {
	if err := r.Watch(ctx); err != nil {
		return err
	}
	var edits <-chan struct{}
	if r.edits != nil {
		defer r.edits.Stop()
		edits = r.edits.C
	}
	l := loop{r: r, apply: apply, b: backoff.Backoff{Min: time.Second, Max: r.opts.Interval},
		lb: backoff.Backoff{Min: time.Second, Max: 30 * time.Second}}
	// The first poll comes at a random point of the first interval: a fleet
	// started together (a deploy, a node's restart) would otherwise poll in
	// step for many intervals, the downward jitter thinning it only slowly
	// (bursts of 3.5× its mean rate at 500 instances, bench/fleet.sh).
	poll := time.NewTimer(1 + rand.N(r.opts.Interval))
	defer poll.Stop()
	lease := time.NewTimer(time.Hour)
	defer lease.Stop()
	for {
		if at, i := r.nextLease(); i >= 0 {
			lease.Reset(time.Until(at))
		} else {
			lease.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			started := time.Now()
			wait, ok := l.pass(ctx, Due{Static: true})
			r.opts.Log.Debug("polled", "ok", ok, "goroutines", runtime.NumGoroutine())
			if ok {
				wait = max(0, wait-time.Since(started)) // polls keep their interval
			} // a backoff counts from the failure: a slow one must not shorten it
			poll.Reset(wait)
		case <-edits:
			l.pass(ctx, Due{Templates: true})
		case <-lease.C:
			l.leases(ctx)
		case <-r.opts.Relogins:
			if r.tokenBound() {
				r.opts.Log.Info("vault token replaced; its leases end with it, so their secrets are fetched anew")
				l.leases(ctx)
			}
		}
	}
}

// Watch starts the watch of the templates directory that Run reads, until
// ctx ends or Run returns. A supervised run calls it before the child
// starts, so that a directory that cannot be watched (the per-user inotify
// limit is the usual cause) ends aion-exec before any child runs; Run
// starts it otherwise.
func (r *Refresher) Watch(ctx context.Context) error {
	dir := r.opts.Templates.TemplatesDir
	if dir == "" || r.edits != nil {
		return nil
	}
	w, err := filewatch.Start(ctx, r.opts.Log, []string{dir}, filewatch.Dir(dir))
	if err != nil {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("watch the templates (AION_TEMPLATES_DIR): %w", err))
	}
	r.edits = w
	return nil
}

// leases takes every lease step that is due: renewals, which change
// nothing rendered, and rotations, which run a pass for the new secrets.
// A step that fails is retried with backoff; the secret stays valid until
// it expires, and the child keeps running on it.
func (l *loop) leases(ctx context.Context) {
	r, now := l.r, time.Now()
	var rotate []int
	for i, p := range r.parts {
		if p.lease == nil || p.next.at.After(now) {
			continue
		}
		if p.next.rotate {
			rotate = append(rotate, i)
			continue
		}
		ok, err := r.renew(ctx, i)
		switch {
		case err != nil && ctx.Err() == nil:
			l.lease.FailAs(r.opts.Log, slog.LevelWarn, vault.Kind(err), "lease renewal failed; retrying while the secret is valid", err,
				"secret", r.opts.Secrets[i].Name, "expires", p.lease.Expires().UTC().Format(time.RFC3339))
			r.parts[i].next.at = now.Add(l.lb.Next()) // renew again, or rotate if past the margin
		case ok:
			l.lease.Recover(r.opts.Log, "lease renewal recovered", "secret", r.opts.Secrets[i].Name)
			l.lb.Reset()
		}
	}
	if len(rotate) == 0 {
		return
	}
	if _, ok := l.pass(ctx, Due{Leased: rotate}); !ok {
		// A read that failed is retried after a backoff; a read that
		// succeeded (the render failed) brought parts with plans of their
		// own, which are kept.
		retry := now.Add(l.lb.Next())
		for _, i := range rotate {
			if !r.parts[i].next.at.After(now) {
				r.parts[i].next.at = retry
			}
		}
		return
	}
	l.lb.Reset()
	r.logRotated(rotate)
}

// loop is Run's state between passes.
type loop struct {
	r      *Refresher
	apply  func(Decision)
	b      backoff.Backoff
	lb     backoff.Backoff // lease steps failing
	vault  statelog.State  // reads failing
	render statelog.State  // templates, render or write failing
	lease  statelog.State  // renewals failing

	limited int // polls in a row that Vault rate-limited
}

// limitedWait is the wait after a poll that Vault rate-limited: never less
// than a poll interval (a fleet that retried sooner than it polls would add
// load to a Vault that is shedding it), and, while the limiting goes on,
// up to four intervals, spread at random so the fleet thins out. The
// transport holds every request until Vault's Retry-After anyway.
func (l *loop) limitedWait() time.Duration {
	l.limited++
	iv := l.r.opts.Interval
	// Half an interval of spread from the first limited poll on: a wait of
	// exactly one interval would keep the fleet's retries in step with
	// Vault's one-second quota windows.
	spread := max(iv/2, min(iv*time.Duration(1<<min(l.limited-1, 2)), 4*iv)-iv)
	return iv + rand.N(spread+1)
}

// pass runs one pass, logs what it found and applies the decision. It
// returns the wait until the next poll and whether the pass succeeded.
func (l *loop) pass(ctx context.Context, due Due) (time.Duration, bool) {
	log := l.r.opts.Log
	d, err := l.r.Refresh(ctx, due)
	var f *failure
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return 0, false
	case errors.As(err, &f) && f.stage == reading:
		l.vault.FailAs(log, slog.LevelWarn, vault.Kind(err), "vault read failed; the child keeps running on the last good render", err)
		switch {
		case vault.RateLimited(err):
			return l.limitedWait(), false
		case vault.Transient(err):
			return l.b.Next(), false
		}
		return backoff.Jitter(l.r.opts.Interval), false
	default:
		l.render.Fail(log, slog.LevelError, "render failed; keeping the last good outputs", err)
		return backoff.Jitter(l.r.opts.Interval), false
	}
	if due.Static || len(due.Leased) > 0 {
		l.vault.Recover(log, "vault read recovered")
		l.b.Reset()
		l.limited = 0
	}
	l.render.Recover(log, "render recovered")
	if d.Action != None {
		what := d.Action.String()
		if d.Action == Reload {
			what = cmp.Or(l.r.opts.ReloadName, "no signal (AION_RELOAD_SIGNAL=none)")
		}
		log.Info(fmt.Sprintf("%s → %s", d.Change, what))
		l.apply(d)
	}
	return backoff.Jitter(l.r.opts.Interval), true
}
