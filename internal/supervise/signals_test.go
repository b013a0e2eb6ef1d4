package supervise

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childPid asks the child for its PID and parent-death signal.
func (p *proc) childPid(role string) (pid, pdeathsig int, err error) {
	if err := p.send("pid"); err != nil {
		return 0, 0, err
	}
	l, err := p.next()
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(l, role+" pid %d pdeathsig %d", &pid, &pdeathsig); err != nil {
		return 0, 0, fmt.Errorf("got line %q, want %q: %w", l, role+" pid PID pdeathsig N", err)
	}
	return pid, pdeathsig, nil
}

// TestFaultSignalsForwarded sends real signals to a supervising process:
// those the Go runtime would crash on must reach the child and leave the
// supervisor running.
func TestFaultSignalsForwarded(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: supervisorEnv("child", "HELPER_CATCH=faults")}, true)
	sup, err := p.pid()
	must(t, err)
	must(t, p.expect("child ready gen="))
	for _, sig := range append(faults, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT) {
		must(t, syscall.Kill(sup, sig.(syscall.Signal)))
		must(t, p.expect("child signal "+sigName(sig)))
	}
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 || r.err != nil {
		t.Errorf("supervisor = %d, %v; want 0, nil", r.code, r.err)
	}
}

// TestStopSignalKillsAfterTimeout: a child that ignores the SIGTERM an
// orchestrator sent gets SIGKILL after StopTimeout, and Run returns 137.
func TestStopSignalKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(signame(sig), func(t *testing.T) {
			t.Parallel()
			const stop = time.Second
			p := start(t, Options{Args: []string{self()}, Env: supervisorEnv("child", "HELPER_CATCH=std", "HELPER_STOP_TIMEOUT="+stop.String())}, true)
			sup, err := p.pid()
			must(t, err)
			must(t, p.expect("child ready gen="))
			sent := time.Now()
			must(t, syscall.Kill(sup, sig))
			must(t, p.expect("child signal "+signame(sig)))
			r, err := p.waitFor(stop + time.Second)
			must(t, err)
			if took := time.Since(sent); took < stop {
				t.Errorf("supervisor returned %v after the signal, before StopTimeout %v", took, stop)
			}
			if r.code != 128+9 || r.err != nil {
				t.Errorf("supervisor = %d, %v; want 137, nil", r.code, r.err)
			}
		})
	}
}

// TestParentDeath: a supervising process killed with SIGKILL (not PID 1)
// takes its child along.
func TestParentDeath(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: supervisorEnv("child")}, true)
	sup, err := p.pid()
	must(t, err)
	must(t, p.expect("child ready gen="))
	pid, pdeathsig, err := p.childPid("child")
	must(t, err)
	if pdeathsig != int(syscall.SIGKILL) {
		t.Errorf("child's parent-death signal = %d, want SIGKILL", pdeathsig)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	must(t, err)
	defer unix.Close(fd)
	must(t, syscall.Kill(sup, syscall.SIGKILL))
	if err := exitedWithin(fd, time.Second); err != nil {
		t.Errorf("child %d after its supervisor was killed: %v", pid, err)
	}
}

// TestPdeathsig: children get SIGKILL as their parent-death signal, but
// not from PID 1, whose death ends its whole PID namespace.
func TestPdeathsig(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child")}, true)
	must(t, p.expect("child ready gen="))
	_, got, err := p.childPid("child")
	must(t, err)
	want := int(syscall.SIGKILL)
	if os.Getpid() == 1 {
		want = 0
	}
	if got != want {
		t.Errorf("parent-death signal = %d, want %d (we are PID %d)", got, want, os.Getpid())
	}
}

// TestSpawnerSurvivesChurn: threads that Go retires (a goroutine that
// locked one returns) must never be the thread a child was forked from.
func TestSpawnerSurvivesChurn(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("child")}, true)
	must(t, p.expect("child ready gen="))
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			runtime.LockOSThread() // never unlocked: the thread exits with us
			runtime.GC()
		})
	}
	wg.Wait()
	for range 20 {
		runtime.GC()
	}
	must(t, p.send("ping"))
	must(t, p.expect("child pong"))
	p.s.Restart(helperEnv("child", "GEN=2"))
	must(t, p.expect("child ready gen=2"))
	must(t, p.send("ping"))
	if err := p.expect("child pong"); err != nil {
		t.Fatalf("child after churn: %v; log:\n%s", err, strings.TrimSpace(p.log.String()))
	}
}

// TestEverySignalForwarded sends a supervising process every signal that
// can be caught, with kill(2) as an operator would: each reaches the
// child, and none ends the supervisor. Job control stops the supervisor
// after the child got it, as dumb-init does, until SIGCONT. Not sent:
// SIGKILL and SIGSTOP (they cannot be caught), SIGCHLD and SIGURG (the
// documented exceptions).
func TestEverySignalForwarded(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: supervisorEnv("child", "HELPER_CATCH=every")}, true)
	sup, err := p.pid()
	must(t, err)
	must(t, p.expect("child ready gen="))
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG:
			continue
		}
		must(t, syscall.Kill(sup, sig))
		must(t, p.expect("child signal "+sigName(sig)))
		if jobControl(sig) {
			must(t, awaitState(sup, 'T'))
			must(t, syscall.Kill(sup, syscall.SIGCONT))
			must(t, p.expect("child signal SIGCONT"))
		}
	}
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 || r.err != nil {
		t.Errorf("supervisor = %d, %v; want 0, nil (it outlived every signal)", r.code, r.err)
	}
}

// TestOwnSIGPIPENotForwarded: the SIGPIPE the kernel raises in the
// supervisor for its own write to a broken pipe is not the child's.
func TestOwnSIGPIPENotForwarded(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: supervisorEnv("child", "HELPER_CATCH=every", "HELPER_EPIPE=1")}, true)
	sup, err := p.pid()
	must(t, err)
	must(t, p.expect("child ready gen="))
	// SIGPROF comes through the catcher's pipe, behind the SIGPIPE the
	// supervisor raised before its child started: had that been passed
	// on, the child would have printed it first.
	must(t, syscall.Kill(sup, syscall.SIGPROF))
	must(t, p.expect("child signal SIGPROF"))
	must(t, p.send("exit 0"))
	if _, err := p.wait(); err != nil {
		t.Fatal(err)
	}
	rest, err := p.rest()
	must(t, err)
	if len(rest) > 0 {
		t.Errorf("child got more: %q", rest)
	}
}

// awaitState waits up to a second for process pid to be in state (as
// /proc/PID/stat has it: 'T' stopped).
func awaitState(pid int, state byte) error {
	return within(time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return err
		}
		// pid (comm) S ...: comm may hold spaces and parentheses.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == state {
			return nil
		}
		return fmt.Errorf("process %d not in state %c: %q", pid, state, b)
	})
}
