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

// Fail logs msg with err at warn level if err differs from the failure
// logged last, and reports whether it logged.
func (s *State) Fail(log *slog.Logger, level slog.Level, msg string, err error, args ...any) bool {
	text := err.Error()
	if text == s.failing {
		return false
	}
	s.failing = text
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
