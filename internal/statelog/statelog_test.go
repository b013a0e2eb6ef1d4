package statelog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestOneLinePerState(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var s State
	refused, sealed := errors.New("connection refused"), errors.New("sealed")
	s.FailAs(log, slog.LevelWarn, "unavailable", "vault read failed", sealed)
	s.FailAs(log, slog.LevelWarn, "unavailable", "vault read failed", refused) // the same outage
	s.Fail(log, slog.LevelWarn, "vault read failed", errors.New("permission denied"))
	s.Fail(log, slog.LevelWarn, "vault read failed", errors.New("permission denied"))
	if !s.Failing() {
		t.Error("not failing after Fail")
	}
	s.Recover(log, "vault read recovered")
	s.Recover(log, "vault read recovered")
	got := buf.String()
	if n := strings.Count(got, "vault read failed"); n != 2 {
		t.Errorf("%d failure lines, want 2 (the outage once, then the new failure):\n%s", n, got)
	}
	if !strings.Contains(got, "err=sealed") || strings.Contains(got, "refused") {
		t.Errorf("the outage's line should carry its first error:\n%s", got)
	}
	if n := strings.Count(got, "recovered"); n != 1 || s.Failing() {
		t.Errorf("%d recovery lines (failing %v), want 1:\n%s", n, s.Failing(), got)
	}
}
