//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// trapChild is a shell child that prints "ready PID", then "signal N" for
// each signal it gets of those trapped: every one bash can trap (not 32
// and 33, which glibc keeps) but SIGKILL, SIGCHLD, SIGSTOP and SIGURG.
const trapChild = `for s in $(seq 1 64); do case $s in 9|17|19|23|32|33) continue;; esac; trap "echo signal $s" $s; done
echo ready $$
while :; do sleep 1 & wait $!; done`

// signalled is aion-exec with a db secret around trapChild; it returns the
// run and the child's PID.
func signalled(t *testing.T, extra ...string) (*running, int) {
	t.Helper()
	v := seeded(t)
	env := append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main",
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"))
	r := supervise(t, append(env, extra...), "bash", "-c", trapChild)
	line := r.stdout.waitFor(t, "ready ", 30*time.Second)
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "ready "))
	if err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return r, pid
}

// The shipped binary, sent every signal its child can trap with kill(2),
// forwards each once and outlives them all: the faults, SIGPIPE and
// SIGPROF (which the Go runtime keeps from os/signal), the real-time
// signals and job control (which stops aion-exec after the child, until
// SIGCONT). The stop signals come last: the child traps them, so after
// AION_STOP_TIMEOUT it is killed and aion-exec exits 137.
func TestSignalsReachTheChild(t *testing.T) {
	t.Parallel()
	r, _ := signalled(t, "AION_STOP_TIMEOUT=1s")
	aionPid := r.cmd.Process.Pid
	// Each signal once, each line once: the child prints nothing else.
	expect := func(sig syscall.Signal) {
		t.Helper()
		if l, want := r.stdout.next(t, 10*time.Second), fmt.Sprintf("signal %d", sig); l != want {
			t.Fatalf("child printed %q, want %q", l, want)
		}
	}
	stops := map[syscall.Signal]bool{syscall.SIGTERM: true, syscall.SIGINT: true, syscall.SIGQUIT: true}
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGCHLD, syscall.SIGSTOP, syscall.SIGURG, 32, 33:
			continue
		}
		if stops[sig] {
			continue
		}
		if err := syscall.Kill(aionPid, sig); err != nil {
			t.Fatal(err)
		}
		expect(sig)
		if sig == syscall.SIGTSTP || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
			eventually(t, "aion-exec stopped by "+unix.SignalName(sig), 5*time.Second, func() error { return inState(aionPid, 'T') })
			if err := syscall.Kill(aionPid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			expect(syscall.SIGCONT)
		}
	}
	// The first stop signal starts AION_STOP_TIMEOUT; the others do not
	// start it again: the child is killed a second after SIGQUIT.
	sent := time.Now()
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGINT, syscall.SIGTERM} {
		syscall.Kill(aionPid, sig)
		expect(sig)
	}
	if code := r.wait(t); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit %d, want 137 (the child, which trapped the stop signals, killed after AION_STOP_TIMEOUT)", code)
	}
	if took := time.Since(sent); took < time.Second || took > 2*time.Second {
		t.Errorf("aion-exec exited %v after the first stop signal, want after AION_STOP_TIMEOUT (1s) and within 1s more", took)
	}
	r.stderr.waitFor(t, "child did not stop in time, killing it", time.Second)
}

// aion-exec killed with SIGKILL (it is not PID 1 here) takes its child
// along: the child's parent-death signal.
func TestChildDiesWithAionExec(t *testing.T) {
	t.Parallel()
	r, child := signalled(t)
	fd, err := unix.PidfdOpen(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := exitedWithin(fd, time.Second); err != nil {
		t.Errorf("child %d after aion-exec was killed: %v", child, err)
	}
}

// The shipped binary started with SIGINT and SIGSEGV ignored and SIGILL
// and SIGTERM blocked, as a parent may start it: its child starts with the
// same mask and ignored signals, as under tini.
func TestChildInheritsSignalState(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := append(baseEnv(), tokenEnv(v, rootToken)...)
	env = append(env, "AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"),
		sigexecVar+"=SIGILL SIGTERM/SIGINT SIGSEGV")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// cat, not grep: GNU grep installs a SIGSEGV handler of its own.
	r := runIn(t, "", env, self, aionBin, "--", "cat", "/proc/self/status")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	want := map[string][]syscall.Signal{"SigBlk": {syscall.SIGILL, syscall.SIGTERM}, "SigIgn": {syscall.SIGINT, syscall.SIGSEGV}}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		name, hex, _ := strings.Cut(line, ":")
		if want[name] == nil {
			continue
		}
		bits, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		var w uint64
		for _, sig := range want[name] {
			w |= 1 << (sig - 1)
		}
		if bits != w {
			t.Errorf("child's %s = %016x, want %016x (%v)", name, bits, w, want[name])
		}
		delete(want, name)
	}
	if len(want) > 0 {
		t.Errorf("child printed no %v:\n%s", want, r.Stdout)
	}
}

// sigexecVar makes this test binary a starter (see TestMain): with
// "BLOCK.../IGNORE...", it blocks and ignores those signals and execs its
// arguments, as a parent process that sets them would.
const sigexecVar = "AION_IT_SIGEXEC"

// sigexec is the starter: raw system calls on one thread, then exec.
func sigexec(spec string, args []string) error {
	runtime.LockOSThread()
	block, ignore, _ := strings.Cut(spec, "/")
	for _, name := range strings.Fields(ignore) {
		sa := [4]uint64{1} // SIG_IGN
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SignalNum(name)), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0); e != 0 {
			return fmt.Errorf("ignore %s: %w", name, e)
		}
	}
	var set unix.Sigset_t
	for _, name := range strings.Fields(block) {
		set.Val[0] |= 1 << (unix.SignalNum(name) - 1)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil); err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, sigexecVar+"=") {
			env = append(env, kv)
		}
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, args, env)
}

// inState says whether process pid is in state ('T': stopped), as
// /proc/PID/stat has it.
func inState(pid int, state byte) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	// pid (comm) S ...: comm may hold spaces and parentheses.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == state {
		return nil
	}
	return fmt.Errorf("state is not %c: %q", state, b)
}

// With a watched directory, the shipped binary starts its keeper, which
// holds the inotify instance and nothing else, and follows aion-exec when
// it exits (docs/supervise.md, "Exit").
func TestKeeperFollowsAionExec(t *testing.T) {
	t.Parallel()
	r, _ := signalled(t, "AION_TEMPLATES_DIR="+t.TempDir(), "AION_STOP_TIMEOUT=1s")
	aionPid := r.cmd.Process.Pid
	var keeper int
	eventually(t, "the keeper", 5*time.Second, func() error {
		// Each thread lists the children it made.
		b, err := exec.Command("sh", "-c", fmt.Sprintf("cat /proc/%d/task/*/children", aionPid)).Output()
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			k, _ := strconv.Atoi(f)
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k))
			if strings.TrimSpace(string(comm)) != "aion-exec keep" {
				continue
			}
			links, err := fdLinks(k)
			if err != nil {
				return err
			}
			if want := "anon_inode:[pidfd] anon_inode:inotify"; links != want {
				return fmt.Errorf("keeper %d holds %s, want %s", k, links, want)
			}
			keeper = k
			return nil
		}
		return fmt.Errorf("no child of aion-exec is the keeper: %q", b)
	})
	fd, err := unix.PidfdOpen(keeper, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r.cmd.Process.Signal(syscall.SIGTERM) // the child traps it: killed after AION_STOP_TIMEOUT
	r.wait(t)
	if err := exitedWithin(fd, 5*time.Second); err != nil {
		t.Errorf("keeper %d after aion-exec exited: %v", keeper, err)
	}
}

// fdLinks lists what pid's descriptors point at, sorted, space-separated.
func fdLinks(pid int) (string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var links []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		links = append(links, l)
	}
	slices.Sort(links)
	return strings.Join(links, " "), nil
}

// The shipped binary as PID 1 of a PID namespace, as a container's
// entrypoint: signals reach the child (job control too, which the kernel
// does not let PID 1 stop itself for), and it exits with the child's code.
func TestSignalsAsPID1(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main",
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"), "AION_STOP_TIMEOUT=1s")
	// --kill-child: a test that fails and stops unshare must not leave its
	// PID 1 behind.
	r := superviseVia(t, env, []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, "bash", "-c", trapChild)
	r.stdout.waitFor(t, "ready ", 30*time.Second)
	// unshare forks aion-exec: its one child.
	var aionPid int
	eventually(t, "aion-exec under unshare", 5*time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", r.cmd.Process.Pid, r.cmd.Process.Pid))
		if err != nil {
			return err
		}
		aionPid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", aionPid))
	if err != nil || !regexp.MustCompile(`(?m)^NSpid:\s+\d+\s+1$`).Match(status) {
		t.Fatalf("aion-exec (%d) is not PID 1 of its namespace: %v\n%s", aionPid, err, status)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGSEGV, syscall.SIGPIPE, syscall.SIGPROF, 34, syscall.SIGTSTP, syscall.SIGWINCH} {
		if err := syscall.Kill(aionPid, sig); err != nil {
			t.Fatal(err)
		}
		r.stdout.waitFor(t, fmt.Sprintf("signal %d", sig), 10*time.Second)
	}
	if err := inState(aionPid, 'T'); err == nil {
		t.Errorf("aion-exec as PID 1 stopped itself after SIGTSTP")
	}
	syscall.Kill(aionPid, syscall.SIGTERM)
	r.stdout.waitFor(t, fmt.Sprintf("signal %d", syscall.SIGTERM), 10*time.Second)
	if code := r.wait(t); code != 137 {
		t.Errorf("exit %d, want 137 (the child, which traps SIGTERM, killed after AION_STOP_TIMEOUT)", code)
	}
}

// exitedWithin waits up to d for the process behind pidfd fd to exit (a
// pidfd polls readable then), across the interruptions of the runtime's
// own signals.
func exitedWithin(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(max(0, time.Until(deadline)).Milliseconds()))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n != 1:
			return fmt.Errorf("still running after %v", d)
		}
		return nil
	}
}
