package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/vault"
	"github.com/aionos/aion-exec/internal/watch"
)

// superviseChild is the entrypoint mode: render everything, start the child,
// then keep the login alive and the outputs current until the child exits.
// It returns the child's exit status. Until the child starts, a signal
// cancels prepCtx; stopSignals then hands signals over to the supervisor.
func superviseChild(ctx, prepCtx context.Context, stopSignals func(), cfg *config.Config, log *slog.Logger, environ, command []string, st streams) (int, error) {
	// Catch the signals to forward while the secrets are read, not after.
	sigs := make(chan os.Signal, 64)
	caught := make(chan struct{})
	go func() { defer close(caught); supervise.Notify(sigs) }()
	defer func() { <-caught; signal.Stop(sigs) }()

	p, data, out, err := prepare(prepCtx, cfg, log)
	if err != nil {
		return 0, err
	}
	stopSignals()
	<-caught

	sup := supervise.New(supervise.Options{
		Args:        command,
		Env:         childEnv(cfg, environ, out.Env),
		Stdin:       fileOf(st.stdin),
		Stdout:      fileOf(st.stdout),
		Stderr:      fileOf(st.stderr),
		StopSignal:  cfg.StopSignal,
		StopTimeout: cfg.StopTimeout,
		Group:       cfg.SignalGroup,
		Logger:      log,
		Signals:     sigs,
	})

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	reauth := make(chan struct{}, 1)
	wg.Go(func() { p.vault.KeepAlive(ctx, reauth) })

	loop := &watch.Loop{
		Interval:   cfg.PollInterval,
		RestartOn:  cfg.RestartOn,
		HostFields: cfg.HostFields,
		ReloadName: signalName(cfg.ReloadSignal),
		Log:        log,
		Read:       p.read,
		Load:       func() (*render.Set, error) { return render.Load(renderOptions(cfg)) },
		Transient:  vault.Transient,
		Apply: func(a watch.Action, env []string) {
			switch a {
			case watch.Restart:
				sup.Restart(childEnv(cfg, environ, env))
			case watch.Reload:
				if cfg.ReloadSignal != 0 {
					sup.Reload(cfg.ReloadSignal)
				}
			}
		},
		TemplatesDir:    cfg.TemplatesDir,
		CredentialFiles: []string{cfg.TokenFile, cfg.SecretIDFile},
		Reauth:          reauth,
	}
	wg.Go(func() {
		if err := loop.Run(ctx, p.set, data, out); err != nil {
			log.Error("watch stopped", "err", err)
		}
	})
	return sup.Run(ctx)
}

// fileOf hands the child our own descriptor when the stream is one, so a
// terminal stays a terminal; nil means the supervisor's default (ours).
func fileOf(s any) *os.File {
	f, _ := s.(*os.File)
	return f
}

func signalName(s syscall.Signal) string {
	if s == 0 {
		return ""
	}
	return unix.SignalName(s)
}
