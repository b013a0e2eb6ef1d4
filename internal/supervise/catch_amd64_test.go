package supervise

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() { helpers["senders"] = helperSenders }

// queue sends this process sig with a siginfo of its own making, as
// rt_sigqueueinfo(2) lets a process do to itself: the sender's PID and
// si_code the catcher judges by.
func queue(sig syscall.Signal, code, pid int32) {
	var info [32]int32 // a siginfo_t: 128 bytes
	info[0], info[2], info[4] = int32(sig), code, pid
	if _, _, e := unix.RawSyscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(os.Getpid()), uintptr(sig), uintptr(unsafe.Pointer(&info))); e != 0 {
		panic(fmt.Sprintf("rt_sigqueueinfo %v: %v", sig, e))
	}
}

// helperSenders catches with the catcher, sends itself signals that claim
// each kind of sender, and prints what the catcher passed on. It stops
// itself on a terminal's SIGTTOU (si_code SI_KERNEL) and says so after
// SIGCONT.
func helperSenders() {
	const siKernel, siQueue, siTimer, siUser = 0x80, -1, -2, 0
	ch := make(chan os.Signal, 8)
	catch(ch)
	next := func() string {
		select {
		case sig := <-ch:
			return sigName(sig)
		case <-time.After(timeout):
			return "nothing"
		}
	}
	queue(syscall.SIGPROF, siKernel, 4242) // setitimer's
	queue(syscall.SIGPROF, siTimer, 4242)  // a POSIX timer's (the PID field is its id)
	queue(34, siQueue, 4242)               // sigqueue(3) from another process
	fmt.Println("senders first", next())
	queue(syscall.SIGPIPE, siUser, int32(os.Getpid())) // the kernel's, for our own write
	queue(syscall.SIGTTOU, siKernel, 0)                // a terminal's: stops us here
	fmt.Println("senders resumed")
	queue(syscall.SIGUSR1, siQueue, 4242) // not caught: a marker for nothing else
	queue(syscall.SIGTTOU, siUser, 4242)  // kill(2) from another process
	fmt.Println("senders next", next())
}

// TestCatcherJudgesTheSender: the catcher passes on what another process
// sent and drops what the kernel raised (timers, our own broken pipe),
// and a terminal's job control stops the process at once, as the
// default action would, without passing it on.
func TestCatcherJudgesTheSender(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("senders")}, true)
	must(t, p.expect("senders first SIG34"))
	pid, err := p.pid()
	must(t, err)
	must(t, awaitState(pid, 'T'))
	must(t, syscall.Kill(pid, syscall.SIGCONT))
	must(t, p.expect("senders resumed"))
	must(t, p.expect("senders next SIGTTOU"))
}
