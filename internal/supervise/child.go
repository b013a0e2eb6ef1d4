package supervise

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// child is one started process; exited delivers its wait status once reaped.
type child struct {
	pid    int
	exited <-chan syscall.WaitStatus
	out    concealing // with Options.Mask
}

// launcher starts and signals children for one Run.
type launcher struct {
	opts *Options
	log  *slog.Logger
	// values are the ones to conceal, for Options.Mask
	values func() *matcher
	// foreground: give each child's group the terminal, decided once per Run
	// because after the first child took it aion-exec no longer has it.
	foreground bool
}

// start starts Args with env. On failure it returns the shell's status for
// it, 127 when the program is missing and 126 when it cannot be executed,
// and an error that carries the same status for sysexits.Code.
func (l *launcher) start(env []string) (child, int, error) {
	env = l.opts.User.withHome(env)
	name := l.opts.Args[0]
	path := lookPath(name, pathOf(env))
	if path == "" {
		return child{}, 127, sysexits.Wrap(127, fmt.Errorf("%s: command not found", name))
	}
	// The caller checked env with CheckArgSize; a kernel's E2BIG would not
	// name the variable at fault.
	if err := checkArgSize(path, l.opts.Args, env); err != nil {
		return child{}, sysexits.DataErr, err
	}
	files := []*os.File{l.opts.Stdin, l.opts.Stdout, l.opts.Stderr}
	var pipes []*os.File // the write ends of masked streams
	var out concealing
	if l.opts.Mask {
		for i := 1; i <= 2; i++ {
			r, w, err := os.Pipe()
			if err != nil {
				for _, w := range pipes {
					w.Close()
				}
				out.wait()
				return child{}, 126, sysexits.Wrap(126, fmt.Errorf("%s: pipe for masked output: %w", name, err))
			}
			out = append(out, copyConcealed(r, files[i], l.values))
			files[i], pipes = w, append(pipes, w)
		}
	}
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	sys := &syscall.SysProcAttr{Setpgid: l.opts.Group, Credential: l.opts.User.credential()}
	if os.Getpid() != 1 {
		// The child never outlives aion-exec, even one killed by SIGKILL or
		// the OOM killer. As PID 1 the kernel kills the whole PID namespace
		// anyway.
		sys.Pdeathsig = syscall.SIGKILL
	}
	if l.foreground {
		sys.Foreground, sys.Ctty = true, int(fds[0])
	}
	pid, exited, err := reap.start(path, l.opts.Args, &syscall.ProcAttr{Env: env, Files: fds, Sys: sys})
	runtime.KeepAlive(files)
	for _, w := range pipes {
		w.Close() // the child's now: its copier ends when the child's ends
	}
	if err != nil {
		out.wait()
		code, err := execError(name, path, err)
		return child{}, code, sysexits.Wrap(code, err)
	}
	l.log.Info("child started", "pid", pid, "program", name)
	if l.opts.OnStart != nil {
		l.opts.OnStart(pid)
	}
	return child{pid: pid, exited: exited, out: out}, 0, nil
}

// signal sends sig to c, or to its process group with Options.Group.
func (l *launcher) signal(c child, sig syscall.Signal) {
	err := reap.kill(c.pid, l.opts.Group, sig)
	switch {
	case err == nil:
	case errors.Is(err, syscall.ESRCH):
		l.log.Debug("child gone before signal", "pid", c.pid, "signal", signame(sig))
	default:
		l.log.Warn("cannot signal child", "pid", c.pid, "signal", signame(sig), "err", err)
	}
}

// lookPath finds name as execvp does, in path (the child's PATH, not ours).
// Like a shell it falls back to a file that is there but not executable, so
// that exec fails with "permission denied" (126), not "not found" (127).
// It returns "" when there is nothing to try.
func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	if name == "" {
		return ""
	}
	denied := ""
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "." // POSIX: an empty PATH entry is the working directory
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if fi.Mode()&0o111 != 0 {
			return p
		}
		if denied == "" {
			denied = p
		}
	}
	return denied
}

// pathOf returns the last PATH in env (the one getenv sees), or ours.
func pathOf(env []string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return os.Getenv("PATH")
}

// execError explains a failed exec, with the shell's status for it: 127
// when something is missing, 126 when it cannot be executed (EACCES,
// ENOEXEC, ...).
func execError(name, path string, err error) (int, error) {
	if !errors.Is(err, syscall.ENOENT) {
		return 126, fmt.Errorf("%s: %w", name, err)
	}
	if _, serr := os.Stat(path); serr == nil {
		// The file is there: its #! interpreter or its dynamic loader is
		// not (a glibc binary on Alpine, say).
		return 127, fmt.Errorf("%s: cannot execute: interpreter or dynamic loader not found: %w", name, err)
	}
	return 127, fmt.Errorf("%s: %w", name, err)
}

// exitCode is the status a shell reports for ws: the exit code, or 128+N
// when signal N killed the process.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// signame is sig as people on call know it: SIGTERM, not "terminated".
func signame(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}

// forwarded reports whether sig, from os/signal, is passed on to the
// child. Not forwarded:
//   - SIGKILL and SIGSTOP: they cannot be caught;
//   - SIGCHLD: it drives reaping; SIGURG: the Go runtime's preemption
//     signal, which aion-exec sends itself;
//   - SIGPIPE, SIGPROF, 32, 33, 34 and job control: they come through the
//     catcher (catch.go), with their sender, where it is installed; where it
//     is not, job control keeps its default (it stops aion-exec, and a
//     terminal's ^Z the child with it).
//
// The faults (SIGSEGV, SIGBUS, SIGILL, ...) are forwarded when another
// process sent them; a real fault in aion-exec still crashes it.
func forwarded(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG,
		syscall.SIGPIPE, syscall.SIGPROF, 32, 33, 34,
		syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return false
	}
	return sig > 0 && sig <= 64
}

// forwardable says which signal of Run's channel goes to the child: one
// the catcher passed on always, one of os/signal if forwarded.
func forwardable(sig os.Signal) (syscall.Signal, bool) {
	switch s := sig.(type) {
	case caught:
		return syscall.Signal(s), true
	case syscall.Signal:
		return s, forwarded(s)
	}
	return 0, false
}

// jobControl reports whether sig stops a process by default. Forwarded
// (it came from another process, through the catcher), it stops aion-exec
// too.
func jobControl(sig syscall.Signal) bool {
	return sig == syscall.SIGTSTP || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU
}

// stopsChild reports whether sig, forwarded, asks the child to end, so that
// StopTimeout starts to run.
func (o *Options) stopsChild(sig syscall.Signal) bool {
	return sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGQUIT || sig == o.StopSignal
}

// forwardedSignals lists every signal forwarded, for signal.Notify.
func forwardedSignals() []os.Signal {
	var sigs []os.Signal
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		// One ignored at start stays so (see keepIgnored).
		if forwarded(sig) && !hasSig(startIgnored, sig) {
			sigs = append(sigs, sig)
		}
	}
	return sigs
}

// ownsTerminal reports whether f is aion-exec's controlling terminal with
// aion-exec's process group in the foreground. Only then may a Group child
// take the terminal over without stealing it from a shell's foreground job.
func ownsTerminal(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
