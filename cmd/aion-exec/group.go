package main

import (
	"context"
	"errors"
	"log/slog"

	oklog "github.com/oklog/run"
)

// actor is one part of a supervised run. run returns when its work ends or
// when ctx ends; an error stops the whole run.
type actor struct {
	name string
	run  func(ctx context.Context) error
}

// errDone is how the child actor says the child is gone: the run ends,
// and that is no failure.
var errDone = errors.New("the child exited")

// runGroup runs the actors until the first of them returns, then cancels
// the others and waits for every one of them (oklog/run), so no goroutine
// outlives the run. It logs why the run ends when an actor failed, and
// returns that actor's error; nil when the child ended it.
func runGroup(ctx context.Context, log *slog.Logger, actors ...actor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var g oklog.Group
	for _, a := range actors {
		g.Add(func() error {
			err := a.run(ctx)
			if err != nil && !errors.Is(err, errDone) {
				log.Error("stopping: "+a.name+" failed", "err", err)
			}
			return err
		}, func(error) { cancel() })
	}
	if err := g.Run(); !errors.Is(err, errDone) {
		return err
	}
	return nil
}
