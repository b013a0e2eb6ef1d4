package supervise

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EntrySymbol is the linker flag that records the signal state aion-exec
// was started with before the Go runtime changes it (amd64 only):
//
//	go build -ldflags=-E=github.com/aionos/aion-exec/internal/supervise.entry
//
// Without it, only what the runtime leaves alone is known: the child gets
// the signals blocked at start less those Go keeps unblocked (SIGHUP,
// SIGINT, SIGQUIT, SIGTERM, SIGABRT, the faults, SIGCHLD, SIGPROF, ...),
// and of the ignored ones only SIGHUP, SIGINT, job control and 32-34.
const EntrySymbol = "github.com/aionos/aion-exec/internal/supervise.entry"

// Written by entry, before any Go code runs.
var (
	startMask     uint64 // blocked at start; bit n-1 for signal n
	startIgnored  uint64 // SIG_IGN at start
	startRecorded bool
	startAction   [4]uint64 // entry's buffer for a kernel sigaction
	_             = startAction
)

// noIgnore are the signals that aion-exec cannot keep ignored itself for
// the child to inherit: os/signal cannot set SIG_IGN for the faults and
// SIGPROF, the runtime needs SIGURG and 33 and the reaper SIGCHLD, and
// Go's fork resets every signal the runtime handles. A child meant to
// start with one of them ignored is started through the shim.
var noIgnore = sigbits(syscall.SIGILL, syscall.SIGTRAP, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV,
	syscall.SIGSTKFLT, syscall.SIGSYS, syscall.SIGPROF, syscall.SIGCHLD, syscall.SIGURG, 33)

func init() {
	if !startRecorded {
		// The runtime installed its handlers over SIG_IGN for all but
		// these; for them the present is the start.
		for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, 32, 34} {
			if ignored(sig) {
				startIgnored |= sigbits(sig)
			}
		}
	}
	shimInit()
}

func sigbits(sigs ...syscall.Signal) uint64 {
	var b uint64
	for _, s := range sigs {
		b |= 1 << (s - 1)
	}
	return b
}

func hasSig(bits uint64, sig syscall.Signal) bool {
	return sig > 0 && sig <= 64 && bits&(1<<(sig-1)) != 0
}

// sigaction is the kernel's struct sigaction on amd64 and arm64.
type sigaction struct {
	handler, flags, restorer uintptr
	mask                     uint64
}

func ignored(sig syscall.Signal) bool {
	var sa sigaction
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&sa)), 8, 0, 0)
	return e == 0 && sa.handler == 1 // SIG_IGN
}

// setIgnored makes sig SIG_IGN behind the runtime's back: only right
// before an exec, which keeps it ignored.
func setIgnored(sig syscall.Signal) error {
	sa := sigaction{handler: 1}
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0); e != 0 {
		return e
	}
	return nil
}

// keepIgnored ignores, in aion-exec too, the signals ignored at its start
// that it can, so that the child inherits them ignored the way tini's
// does: the kernel discards such a signal before anyone sees it, so it is
// not forwarded either. A Notify elsewhere in the process since start
// (main's own SIGINT handling) is undone here.
func keepIgnored() {
	var sigs []os.Signal
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if hasSig(startIgnored&^noIgnore, sig) && sig != 32 && sig != 34 {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) > 0 {
		signal.Ignore(sigs...)
	}
}

// childMask is the signal mask the spawner gives a child, when known.
func childMask() (*unix.Sigset_t, bool) {
	if !startRecorded {
		return nil, false
	}
	var set unix.Sigset_t
	set.Val[0] = startMask
	return &set, true
}
