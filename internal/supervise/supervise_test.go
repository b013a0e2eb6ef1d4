package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

func TestExitStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(content), mode))
		return p
	}
	plain := write("plain", "#!/bin/sh\n", 0o644)
	garbage := write("garbage", "\x00\x01\x02garbage", 0o755)
	badInterp := write("bad-interp", "#!/nonexistent/interpreter\n", 0o755)
	pathDir := filepath.Join(dir, "bin")
	must(t, os.Mkdir(pathDir, 0o755))
	must(t, os.Symlink(self(), filepath.Join(pathDir, "aion-helper")))
	must(t, os.WriteFile(filepath.Join(pathDir, "not-exec"), nil, 0o644))

	tests := []struct {
		name    string
		args    []string
		env     []string
		code    int
		wantErr string // "" for none
	}{
		{"exit 0", []string{self()}, helperEnv("exit", "HELPER_CODE=0"), 0, ""},
		{"exit 7", []string{self()}, helperEnv("exit", "HELPER_CODE=7"), 7, ""},
		{"found in the child's PATH", []string{"aion-helper"}, helperEnv("exit", "HELPER_CODE=4", "PATH=/nonexistent:"+pathDir), 4, ""},
		{"command not found", []string{"aion-no-such-command"}, helperEnv("exit", "PATH="+pathDir), 127, "aion-no-such-command: command not found"},
		{"missing file", []string{filepath.Join(dir, "missing")}, nil, 127, filepath.Join(dir, "missing") + ": no such file or directory"},
		{"missing interpreter", []string{badInterp}, nil, 127, badInterp + ": cannot execute: interpreter or dynamic loader not found"},
		{"not executable", []string{plain}, nil, 126, plain + ": permission denied"},
		{"not executable in PATH", []string{"not-exec"}, []string{"PATH=" + pathDir}, 126, "not-exec: permission denied"},
		{"exec format error", []string{garbage}, nil, 126, garbage + ": exec format error"},
		{"directory", []string{dir}, nil, 126, dir + ": permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, Options{Args: tt.args, Env: append(tt.env, secret)}, true)
			r, err := p.wait()
			must(t, err)
			if r.code != tt.code {
				t.Errorf("code = %d, want %d", r.code, tt.code)
			}
			switch {
			case tt.wantErr == "" && r.err != nil:
				t.Errorf("err = %v, want nil", r.err)
			case tt.wantErr != "" && (r.err == nil || !strings.HasPrefix(r.err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want %q...", r.err, tt.wantErr)
			case r.err != nil && strings.Contains(r.err.Error(), secret):
				t.Errorf("err = %v, holds the child's environment", r.err)
			case r.err != nil && sysexits.Code(r.err) != tt.code:
				t.Errorf("sysexits.Code(err) = %d, want %d", sysexits.Code(r.err), tt.code)
			}
		})
	}
}

func TestKilledBySignal(t *testing.T) {
	t.Parallel()
	t.Run("SIGKILL", func(t *testing.T) {
		t.Parallel()
		p := start(t, Options{Args: []string{self()}, Env: helperEnv("child")}, true)
		pid, err := p.pid()
		must(t, err)
		must(t, p.expect("child ready gen="))
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		r, err := p.wait()
		must(t, err)
		if r.code != 128+9 || r.err != nil {
			t.Errorf("run = %d, %v; want 137, nil", r.code, r.err)
		}
	})
	t.Run("forwarded SIGTERM", func(t *testing.T) {
		t.Parallel()
		p := start(t, Options{Args: []string{self()}, Env: helperEnv("child")}, true)
		must(t, p.expect("child ready gen="))
		p.signal(syscall.SIGTERM)
		r, err := p.wait()
		must(t, err)
		if r.code != 128+15 || r.err != nil {
			t.Errorf("run = %d, %v; want 143, nil", r.code, r.err)
		}
	})
}

func TestForwardsSignals(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std")}, true)
	must(t, p.expect("child ready gen="))
	// SIGTERM and SIGINT among them: forwarded, they do not end Run; the
	// child, which survives them, decides.
	for _, sig := range catchable {
		p.signal(sig)
		must(t, p.expect("child signal "+sigName(sig)))
	}
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 || r.err != nil {
		t.Errorf("run = %d, %v; want 0, nil", r.code, r.err)
	}
}

func TestDoesNotForward(t *testing.T) {
	t.Parallel()
	// The child catches even SIGURG, so its own runtime must not send it.
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=all", "GODEBUG=asyncpreemptoff=1")}, true)
	must(t, p.expect("child ready gen="))
	for _, sig := range neverForwarded {
		p.signal(sig)
	}
	// SIGWINCH, sent after them and numbered above them all, would reach
	// the child last if any of them had been forwarded.
	p.signal(syscall.SIGWINCH)
	must(t, p.expect("child signal SIGWINCH"))
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 {
		t.Errorf("code = %d, want 0", r.code)
	}
	rest, err := p.rest()
	must(t, err)
	if len(rest) > 0 {
		t.Errorf("child got more: %q", rest)
	}
}

func TestForwardedSet(t *testing.T) {
	t.Parallel()
	got := forwardedSignals()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGSEGV,
		syscall.SIGABRT, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSYS, 35, 64} {
		if !slices.Contains(got, os.Signal(sig)) {
			t.Errorf("%v is not forwarded", sig)
		}
	}
	// Not from os/signal: never (the first four), or only through the
	// catcher, which says who sent them.
	for _, sig := range []syscall.Signal{syscall.SIGCHLD, syscall.SIGURG, syscall.SIGKILL,
		syscall.SIGSTOP, syscall.SIGPIPE, syscall.SIGPROF, 32, 33, 34, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, 65} {
		if slices.Contains(got, os.Signal(sig)) || forwarded(sig) {
			t.Errorf("%v is forwarded from os/signal", sig)
		}
	}
	for _, sig := range caughtSignals {
		if n, ok := forwardable(caught(sig)); !ok || n != sig {
			t.Errorf("forwardable(caught(%v)) = %v, %v; want %v, true", sig, n, ok, sig)
		}
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std")}, true)
	must(t, p.expect("child ready gen="))
	p.s.Reload(syscall.SIGHUP)
	must(t, p.expect("child signal SIGHUP"))
	// A second SIGHUP, sent before this SIGUSR1, would show up first.
	p.signal(syscall.SIGUSR1)
	must(t, p.expect("child signal SIGUSR1"))

	// A child that exits on its own ends Run even with reloads pending.
	must(t, p.send("exit 6"))
	for range 50 {
		p.s.Reload(syscall.SIGUSR2)
	}
	r, err := p.wait()
	must(t, err)
	if r.code != 6 || r.err != nil {
		t.Errorf("run = %d, %v; want 6, nil", r.code, r.err)
	}
	p.s.Reload(syscall.SIGHUP) // after Run: a no-op, and does not block
	p.s.Restart(nil)
}

func TestBeforeRun(t *testing.T) {
	t.Parallel()
	p := startWith(t, Options{Args: []string{self()}, Env: helperEnv("child", "GEN=1")}, true, func(s *Supervisor) {
		s.Reload(syscall.SIGHUP) // no child yet: dropped
		s.Restart(helperEnv("child", "GEN=2"))
		s.Restart(helperEnv("child", "GEN=3"))
	})
	must(t, p.expect("child ready gen=3"))
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 {
		t.Errorf("code = %d, want 0", r.code)
	}
	if _, err := p.s.Run(context.Background()); err == nil {
		t.Error("second Run: err = nil, want one")
	}
	if code, err := New(Options{}).Run(context.Background()); code == 0 || err == nil {
		t.Errorf("Run without Args = %d, %v; want an error", code, err)
	}
}

// gone reports whether pid was reaped: kill(pid, 0) still finds a zombie.
func gone(pid int) error {
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process %d still exists (kill: %v)", pid, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("process %d still in /proc (stat: %v)", pid, err)
	}
	return nil
}

func TestRestart(t *testing.T) {
	t.Parallel()
	var pids []int
	checked := make(chan error, 4)
	p := start(t, Options{
		Args: []string{self()},
		Env:  helperEnv("child", "GEN=1"),
		OnStart: func(pid int) {
			if len(pids) > 0 {
				checked <- gone(pids[len(pids)-1])
			}
			pids = append(pids, pid)
		},
	}, true)
	must(t, p.expect("child ready gen=1"))
	p.s.Restart(helperEnv("child", "GEN=2"))
	must(t, p.expect("child ready gen=2"))
	select {
	case err := <-checked:
		if err != nil {
			t.Errorf("when the new child started: %v", err)
		}
	default:
		t.Fatal("OnStart did not see a second start")
	}
	// The new child exiting on its own ends Run with its status.
	must(t, p.send("exit 5"))
	r, err := p.wait()
	must(t, err)
	if r.code != 5 || r.err != nil {
		t.Errorf("run = %d, %v; want 5, nil", r.code, r.err)
	}
	if len(pids) != 2 {
		t.Errorf("started %d children, want 2", len(pids))
	}
}

func TestRestartsCoalesce(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std", "GEN=1"), StopTimeout: time.Hour}, true)
	must(t, p.expect("child ready gen=1"))
	first, err := p.pid()
	must(t, err)
	p.s.Restart(helperEnv("child", "HELPER_CATCH=std", "GEN=2"))
	must(t, p.expect("child signal SIGTERM")) // ignored: the child stays up
	p.s.Restart(helperEnv("child", "HELPER_CATCH=std", "GEN=3"))
	p.s.Reload(syscall.SIGHUP) // moot: the child is being replaced
	p.s.Restart(helperEnv("child", "HELPER_CATCH=std", "GEN=4"))
	must(t, p.send("ping"))
	must(t, p.expect("child pong"))
	must(t, p.send("exit 0"))
	must(t, p.expect("child ready gen=4"))
	second, err := p.pid()
	must(t, err)
	must(t, gone(first))
	must(t, p.send("exit 9"))
	r, err := p.wait()
	must(t, err)
	if r.code != 9 || r.err != nil {
		t.Errorf("run = %d, %v; want 9, nil", r.code, r.err)
	}
	if len(p.pids) > 0 {
		t.Errorf("started more children after %d and %d: %d", first, second, <-p.pids)
	}
}

func TestStopTimeoutKills(t *testing.T) {
	t.Parallel()
	// The children catch SIGTERM and carry on. Whether one prints that
	// before SIGKILL comes is up to the scheduler, so that line is optional.
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std", "GEN=1"), StopTimeout: 50 * time.Millisecond}, true)
	must(t, p.expect("child ready gen=1"))
	p.s.Restart(helperEnv("child", "HELPER_CATCH=std", "GEN=2"))
	l, err := p.next()
	if l == "child signal SIGTERM" {
		l, err = p.next()
	}
	must(t, err)
	if l != "child ready gen=2" {
		t.Fatalf("got line %q, want %q", l, "child ready gen=2")
	}
	p.cancel()
	r, err := p.wait()
	must(t, err)
	if r.code != 128+9 || r.err != nil {
		t.Errorf("run = %d, %v; want 137, nil", r.code, r.err)
	}
	if n := strings.Count(p.log.String(), "child did not stop in time"); n != 2 {
		t.Errorf("%d kills logged, want 2 (restart, shutdown)", n)
	}
}

func TestCancelStopsGracefully(t *testing.T) {
	t.Parallel()
	p := start(t, Options{
		Args:        []string{self()},
		Env:         helperEnv("child", "HELPER_CATCH=std", "HELPER_EXIT_ON=SIGINT 3"),
		StopSignal:  syscall.SIGINT,
		StopTimeout: time.Hour,
	}, true)
	must(t, p.expect("child ready gen="))
	p.cancel()
	must(t, p.expect("child signal SIGINT"))
	r, err := p.wait()
	must(t, err)
	if r.code != 3 || r.err != nil {
		t.Errorf("run = %d, %v; want 3, nil", r.code, r.err)
	}
}

func TestTerminationDuringRestart(t *testing.T) {
	t.Parallel()
	// An orchestrator's SIGTERM during a restart ends it: no new child.
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std"), StopTimeout: time.Hour}, true)
	must(t, p.expect("child ready gen="))
	p.s.Restart(helperEnv("child", "HELPER_CATCH=std", "GEN=2"))
	must(t, p.expect("child signal SIGTERM"))
	p.signal(syscall.SIGTERM)
	must(t, p.expect("child signal SIGTERM"))
	must(t, p.send("exit 4"))
	r, err := p.wait()
	must(t, err)
	if r.code != 4 || r.err != nil {
		t.Errorf("run = %d, %v; want 4, nil", r.code, r.err)
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		pgid := make(chan int, 1)
		p := start(t, Options{Args: []string{self()}, Env: helperEnv("child"), OnStart: func(pid int) {
			g, _ := syscall.Getpgid(pid)
			pgid <- g
		}}, true)
		if got, want := <-pgid, syscall.Getpgrp(); got != want {
			t.Errorf("child's process group = %d, want ours, %d", got, want)
		}
		must(t, p.expect("child ready gen="))
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		env := helperEnv("child", "HELPER_CATCH=std", "HELPER_EXIT_ON=SIGTERM 0")
		pgid := make(chan [2]int, 1)
		p := start(t, Options{Args: []string{self()}, Env: env, Group: true, StopTimeout: time.Hour, OnStart: func(pid int) {
			g, _ := syscall.Getpgid(pid)
			pgid <- [2]int{pid, g}
		}}, true)
		if got := <-pgid; got[0] != got[1] {
			t.Errorf("child %d is in process group %d, want its own", got[0], got[1])
		}
		must(t, p.expect("child ready gen="))
		must(t, p.send("spawn grandchild"))
		must(t, p.expect("grandchild ready gen="))
		p.signal(syscall.SIGUSR1)
		must(t, p.expectSet("child signal SIGUSR1", "grandchild signal SIGUSR1"))
		p.cancel() // the stop signal goes to the group too
		must(t, p.expectSet("child signal SIGTERM", "grandchild signal SIGTERM"))
		r, err := p.wait()
		must(t, err)
		if r.code != 0 || r.err != nil {
			t.Errorf("run = %d, %v; want 0, nil", r.code, r.err)
		}
	})
	t.Run("killed", func(t *testing.T) {
		// Both ignore the stop signal: after StopTimeout SIGKILL goes to
		// the whole group, the grandchild too, which would otherwise
		// linger on for the whole timeout after its stdin (held by the
		// child) ends.
		t.Parallel()
		p := start(t, Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std", "HELPER_LINGER=1"), Group: true, StopTimeout: 200 * time.Millisecond}, true)
		must(t, p.expect("child ready gen="))
		must(t, p.send("spawn grandchild"))
		must(t, p.expect("grandchild ready gen="))
		p.cancel()
		must(t, p.expectSet("child signal SIGTERM", "grandchild signal SIGTERM"))
		r, err := p.wait()
		must(t, err)
		if r.code != 128+9 || r.err != nil {
			t.Errorf("run = %d, %v; want 137, nil", r.code, r.err)
		}
		// The grandchild shares our end of the output pipe: it ends only
		// when the grandchild is gone too.
		rest, err := p.rest()
		must(t, err)
		if len(rest) > 0 {
			t.Errorf("more output: %q", rest)
		}
	})
}

// TestSubreaper is not parallel: the reaper logs orphans to the first
// running Supervisor, which must be this one.
func TestSubreaper(t *testing.T) {
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child")}, true)
	must(t, p.expect("child ready gen="))
	must(t, unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&prctlOut)), 0, 0, 0))
	on := int(prctlOut)
	// PID 1 is where orphans go anyway; it needs no subreaper.
	if want := 1 - boolInt(os.Getpid() == 1); on != want {
		t.Errorf("child subreaper = %d while Run runs as PID %d, want %d", on, os.Getpid(), want)
	}
	pids, err := p.orphans(3)
	must(t, err)
	must(t, p.awaitReaped(pids))
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 || r.err != nil {
		t.Errorf("run = %d, %v; want 0, nil", r.code, r.err)
	}
}

// TestPID1 runs helperPID1 as PID 1 of a new PID namespace, under
// Supervisor itself so that it needs no other waiter in this process.
func TestPID1(t *testing.T) {
	t.Parallel()
	p := start(t, Options{
		Args: []string{"unshare", "--pid", "--fork", "--mount-proc", self()},
		Env:  helperEnv("pid1", "PATH="+os.Getenv("PATH")),
	}, true)
	r, err := p.waitFor(3 * timeout) // longer than helperPID1's own waits, so its report arrives
	must(t, err)
	lines, err := p.rest()
	must(t, err)
	if r.code == 127 {
		t.Fatalf("this test needs unshare(1) from util-linux: %v", r.err)
	}
	if r.code != 0 || !slices.Contains(lines, "pid1 ok") {
		t.Fatalf("unshare --pid --fork --mount-proc (needs root or user namespaces) = %d, %v; output:\n%s",
			r.code, r.err, strings.Join(lines, "\n"))
	}
}

func TestLookPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	tests := []struct{ name, path, want string }{
		{"x", "/nonexistent:" + dir, filepath.Join(dir, "x")},
		{"plain", dir, filepath.Join(dir, "plain")},
		{"d", dir, ""},
		{"./x", "", "./x"},
		{"missing", dir, ""},
		{"", dir, ""},
	}
	for _, tt := range tests {
		if got := lookPath(tt.name, tt.path); got != tt.want {
			t.Errorf("lookPath(%q, %q) = %q, want %q", tt.name, tt.path, got, tt.want)
		}
	}
	if got := pathOf([]string{"PATH=/a", "X=1", "PATH=/b"}); got != "/b" {
		t.Errorf("pathOf = %q, want the last PATH, /b", got)
	}
	if got := pathOf([]string{"X=1"}); got != os.Getenv("PATH") {
		t.Errorf("pathOf without PATH = %q, want ours", got)
	}
}

// TestNoLeaks is not parallel: it counts the process's goroutines and
// descriptors around 500 children started and stopped.
func TestNoLeaks(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	must(t, err)
	defer devnull.Close()
	stdin, in, err := os.Pipe() // kept open: a child exits when its stdin ends
	must(t, err)
	defer stdin.Close()
	defer in.Close()
	// run starts a child and restarts it n times, then stops it; each stop
	// comes as soon as the child started. Run catches real signals here.
	run := func(restarts int) {
		t.Helper()
		var s *Supervisor
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		s = New(Options{
			Args: []string{self()}, Env: helperEnv("child"),
			Stdin: stdin, Stdout: devnull, Stderr: devnull,
			OnStart: func(int) {
				if n++; n <= restarts {
					s.Restart(helperEnv("child"))
				} else {
					cancel()
				}
			},
		})
		if code, err := s.Run(ctx); code != 128+15 || err != nil {
			t.Fatalf("run = %d, %v; want 143, nil", code, err)
		}
	}
	run(1) // warm up: the runtime's signal goroutine stays for good
	goroutines, fds := runtime.NumGoroutine(), countFDs(t)
	for range 250 {
		run(1)
	}
	run(500)
	deadline := time.Now().Add(timeout)
	for {
		g, f := runtime.NumGoroutine(), countFDs(t)
		if g <= goroutines && f <= fds {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d -> %d, descriptors %d -> %d\n%s", goroutines, g, fds, f, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func countFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(fds)
}
