package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/supervise"
)

// syncBuffer is a log sink that the group's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// childActor supervises a real child; started receives its PID.
func childActor(log *slog.Logger, args []string, code *int) (actor, <-chan int) {
	started := make(chan int, 1)
	sup := supervise.New(supervise.Options{Args: args, Env: []string{"PATH=/usr/bin:/bin"}, Logger: log,
		StopTimeout: 5 * time.Second, Signals: make(chan os.Signal), OnStart: func(pid int) { started <- pid }})
	return actor{"child", func(ctx context.Context) error {
		*code, _ = sup.Run(ctx)
		return errDone
	}}, started
}

// idle is an actor (renewal, say) that works until stopped and tells when.
func idle(name string) (actor, <-chan struct{}) {
	stopped := make(chan struct{})
	return actor{name, func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return nil
	}}, stopped
}

func within(t *testing.T, what string, c <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

func TestGroupWatcherFailureStopsTheChild(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var code int
	child, started := childActor(log, []string{"sleep", "600"}, &code)
	renewal, renewalStopped := idle("lifetime")
	var pid int
	watcher := actor{"refresh", func(ctx context.Context) error {
		pid = <-started
		return errors.New("watch the templates (AION_TEMPLATES_DIR): too many open files")
	}}
	done := make(chan struct{})
	var err error
	go func() { defer close(done); err = runGroup(context.Background(), log, child, renewal, watcher) }()
	within(t, "the group ends", done, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "AION_TEMPLATES_DIR") {
		t.Errorf("runGroup = %v, want the watcher's error", err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("child %d still runs", pid)
	}
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("child status %d, want %d (stopped by SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
	within(t, "renewal stops", renewalStopped, time.Second)
	for _, want := range []string{`msg="stopping: refresh failed"`, "too many open files", `msg="stopping child"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestGroupChildExitStopsTheOthers(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var code int
	child, _ := childActor(log, []string{"sh", "-c", "exit 3"}, &code)
	renewal, renewalStopped := idle("lifetime")
	watcher, watcherStopped := idle("refresh")
	done := make(chan struct{})
	var err error
	go func() { defer close(done); err = runGroup(context.Background(), log, child, renewal, watcher) }()
	within(t, "the group ends", done, 5*time.Second)
	if err != nil || code != 3 {
		t.Errorf("runGroup = %v, child status %d; want nil, 3", err, code)
	}
	// runGroup waits for every actor, so both have stopped by now.
	for what, c := range map[string]<-chan struct{}{"renewal": renewalStopped, "watcher": watcherStopped} {
		select {
		case <-c:
		default:
			t.Errorf("%s still runs after runGroup returned", what)
		}
	}
}
