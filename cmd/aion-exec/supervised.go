package main

import (
	"context"
	"os"

	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// supervise is the entrypoint mode: render everything, start the child,
// then run the actor group until the child exits. It returns the child's
// exit status, or an actor's failure with its exit code. Until the child
// starts, a SIGINT or SIGTERM cancels prepCtx; handOver then passes
// signals to the supervisor.
//
// The actors, and who stops whom (docs/design.md):
//   - signals: every signal that can be caught, from before the first read
//     on, forwarded to the child by the supervisor until the child is
//     gone; never fails.
//   - child: the supervisor; the child's exit ends the run.
//   - lifetime: login renewal and re-login; Vault failures are retried
//     and never fatal; credential files that cannot be watched are.
//   - refresh: polls and template edits; failed passes keep the last good
//     render and are never fatal; templates that cannot be watched are.
//
// When any actor returns, the others are stopped: the child with its stop
// signal, then SIGKILL after AION_STOP_TIMEOUT.
func (a *app) supervise(ctx, prepCtx context.Context, handOver func(), command []string) (int, error) {
	a.command, a.environ = command, os.Environ()
	// Catch the signals to forward while the secrets are read, not after:
	// registering ~45 signals takes the better part of a millisecond. They
	// stay registered until the process exits: unregistering them would
	// cost as much again between the child's exit and ours.
	sigs := make(chan os.Signal, 64)
	caught := make(chan struct{})
	go func() { defer close(caught); supervise.Notify(sigs) }()
	defer func() { <-caught }()

	vc, r, first, err := a.prepare(prepCtx)
	if err != nil {
		return 0, err
	}
	// The watches start before the child: one that cannot watch (the
	// per-user inotify limit) ends the run before any child runs.
	err = r.Watch(ctx)
	if err == nil {
		err = vc.WatchCredentials(ctx)
	}
	if err != nil {
		giveBack(ctx, r) // as after a failed first pass: nothing was made of them
		return 0, err
	}
	handOver()
	<-caught
	// Off the child's path: the keeper holds the watches' inotify
	// instances, so that the exit does not wait for their teardown.
	kept := make(chan struct{})
	go func() { defer close(kept); supervise.Keep() }()
	defer func() { <-kept }()

	forward := make(chan os.Signal, 64)
	sup, apply := a.supervisor(command, first, forward)
	code, startErr := 0, error(nil)
	childGone := make(chan struct{})
	err = runGroup(ctx, a.log,
		// Signals are relayed for as long as there is a child, not just
		// until the run is stopped: one sent while the child is being
		// stopped after an actor failed still reaches it.
		actor{"signals", func(context.Context) error { relay(childGone, sigs, forward); return nil }},
		actor{"child", func(ctx context.Context) error {
			defer close(childGone)
			// A child that cannot start (127, 126) is reported by the
			// caller as a shell would, not as an actor's failure.
			code, startErr = sup.Run(ctx)
			return errDone
		}},
		actor{"lifetime", vc.KeepAlive},
		actor{"refresh", func(ctx context.Context) error { return r.Run(ctx, apply) }},
	)
	if a.cfg.RevokeOnExit.V {
		giveBack(ctx, r) // the group is over: nothing else touches r
	}
	if err != nil {
		return sysexits.Code(err), err
	}
	return code, startErr
}

// supervisor is the child's supervisor, started with the first pass's
// environment and fed forwarded signals from forward, and what applies a
// refresh Decision to it.
func (a *app) supervisor(command []string, first refresh.Decision, forward chan os.Signal) (*supervise.Supervisor, func(refresh.Decision)) {
	sup := supervise.New(supervise.Options{
		Args:        command,
		Env:         childEnv(a.cfg, a.environ, first.Env),
		Stdin:       fileOf(a.st.stdin),
		Stdout:      fileOf(a.st.stdout),
		Stderr:      fileOf(a.st.stderr),
		StopSignal:  a.cfg.StopSignal.V,
		StopTimeout: a.cfg.StopTimeout.V,
		Group:       a.cfg.SignalGroup.V,
		Logger:      a.log,
		Signals:     forward,
		User:        a.user,
		Mask:        a.cfg.MaskOutput.V,
	})
	conceal := func(d refresh.Decision) {
		if a.cfg.MaskOutput.V {
			sup.Conceal(concealed(d))
		}
	}
	conceal(first)
	apply := func(d refresh.Decision) {
		conceal(d)
		switch d.Action {
		case refresh.Restart:
			sup.Restart(childEnv(a.cfg, a.environ, d.Env))
		case refresh.Reload:
			if a.cfg.ReloadSignal.V != 0 {
				sup.Reload(a.cfg.ReloadSignal.V)
			}
		}
	}
	return sup, apply
}

// giveBack revokes the leases r holds, bounded: a Vault that is away must
// not hold up the exit for long. It runs after ctx has ended too.
func giveBack(ctx context.Context, r *refresh.Refresher) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), vault.RevokeBound)
	defer cancel()
	r.RevokeAll(rctx)
}

// relay passes caught signals on until done is closed.
func relay(done <-chan struct{}, from <-chan os.Signal, to chan<- os.Signal) {
	for {
		select {
		case <-done:
			return
		case sig := <-from:
			select {
			case to <- sig:
			case <-done:
				return
			}
		}
	}
}

// fileOf hands the child our own descriptor when the stream is one, so a
// terminal stays a terminal; nil means the supervisor's default (ours).
func fileOf(s any) *os.File {
	f, _ := s.(*os.File)
	return f
}
