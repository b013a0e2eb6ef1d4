package supervise

import (
	"os/signal"
	"syscall"
	"unsafe"
)

// caughtSignals are the signals the catcher takes from the runtime
// (catch.go).
var caughtSignals = []syscall.Signal{syscall.SIGPIPE, syscall.SIGPROF, 32, 33, 34,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}

// In catch_amd64.s.
func catchHandler()
func catchRestorer()
func catchPCs() (handler, restorer uintptr)

var _, _ = catchHandler, catchRestorer

const (
	saSiginfo  = 0x4
	saRestorer = 0x04000000
	saOnstack  = 0x08000000
	saRestart  = 0x10000000
)

// installCatch makes catchHandler the handler of sig, behind the
// runtime's back.
func installCatch(sig syscall.Signal) {
	if sig == syscall.SIGPIPE {
		// The runtime's own check after a write to a broken stdout or
		// stderr (os.File's epipecheck) ends the process unless SIGPIPE
		// is ignored or notified; ignored it is, for that check.
		signal.Ignore(syscall.SIGPIPE)
	}
	h, r := catchPCs()
	sa := sigaction{handler: h, flags: saSiginfo | saOnstack | saRestart | saRestorer, restorer: r, mask: ^uint64(0)}
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
}
