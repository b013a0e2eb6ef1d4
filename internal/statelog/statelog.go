// Package statelog logs changes of state, not attempts: a loop that retries
// a failing Vault every second must say so once when it starts failing,
// again only when the failure changes, and once when it recovers. It never
// formats a value itself; callers pass messages that hold no secrets.
package statelog

import (
	"context"
	"log/slog"
)

// State is one condition that can fail and recover; the zero value is
// healthy. It is not safe for concurrent use: each loop owns its own.
type State struct {
	failing string // the error text logged last; "" while healthy
}

// Fail logs msg with err at level if err differs from the failure logged
// last, and reports whether it logged.
func (s *State) Fail(log *slog.Logger, level slog.Level, msg string, err error, args ...any) bool {
	return s.FailAs(log, level, err.Error(), msg, err, args...)
}

// FailAs is Fail with the state named by kind rather than by err's text:
// a loop that says once that Vault is away, whatever each attempt met on
// the way (a node answering 503 while it stops, then refusing connections),
// gives all of them one kind. The line logged carries the first err.
func (s *State) FailAs(log *slog.Logger, level slog.Level, kind, msg string, err error, args ...any) bool {
	if kind == s.failing {
		return false
	}
	s.failing = kind
	log.Log(context.Background(), level, msg, append(args, "err", err)...)
	return true
}

// Recover logs msg once at info level if the state was failing.
func (s *State) Recover(log *slog.Logger, msg string, args ...any) bool {
	if s.failing == "" {
		return false
	}
	s.failing = ""
	log.Info(msg, args...)
	return true
}

// Failing reports whether a failure was logged and has not recovered.
func (s *State) Failing() bool { return s.failing != "" }
