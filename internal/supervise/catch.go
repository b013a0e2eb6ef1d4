package supervise

import (
	"encoding/binary"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
)

// The catcher passes on the signals that the Go runtime keeps from
// os/signal, and job control, so that they are forwarded like the others
// when another process sends them:
//   - SIGPROF: the runtime takes it for its profiler, whoever sent it;
//   - 33: the runtime's per-thread system calls (syscall.AllThreadsSyscall,
//     and syscall.Setuid and its kin without cgo, which aion-exec never
//     calls: they would wait forever for threads that no longer answer 33);
//   - 32 and 34: reserved by glibc and musl; the runtime leaves them at
//     their default, which would end aion-exec;
//   - SIGPIPE: the kernel raises it in aion-exec for aion-exec's own writes
//     to a closed pipe or socket exactly as kill(2) would, and os/signal
//     does not say who sent it. The catcher does: those of the kernel carry
//     aion-exec's own PID and are dropped;
//   - SIGTSTP, SIGTTIN, SIGTTOU: from another process they are forwarded,
//     and aion-exec then stops itself (Supervisor); from a terminal (the
//     kernel sends them to the whole foreground or background process
//     group, the child's too) the handler stops aion-exec at once, as the
//     default action would.
//
// Only what a process sent (kill, sigqueue, tgkill) is passed on, never
// what the kernel raised (a timer's SIGPROF, a terminal's job control).
// The handler (catch_amd64.s) writes each one, with the sender's PID and
// si_code, to a pipe; one goroutine, which lives as long as the process
// (as os/signal's own does), reads them and hands them to the channels
// registered. The handlers are installed once, at the first registration,
// and stay: the child does not inherit them (exec resets every handled
// signal to its default). A signal ignored when aion-exec started keeps
// SIG_IGN, for the child to inherit, and is not caught. amd64 only:
// elsewhere these signals keep the runtime's handling, and job control its
// default (catch_other.go).
var catcher struct {
	once sync.Once
	mu   sync.Mutex
	subs []chan<- os.Signal
}

// catchFD is the pipe catchHandler writes to: non-blocking, so a handler
// never waits (a signal that finds the pipe full is lost, as a standard
// signal that is already pending is).
var (
	catchFD int64
	_       = catchFD // read by catchHandler only
)

// caught is a signal that the catcher passed on: another process sent it.
type caught syscall.Signal

func (c caught) Signal()        {}
func (c caught) String() string { return syscall.Signal(c).String() }

// catch registers c for the caught signals and returns what unregisters
// it.
func catch(c chan<- os.Signal) (stop func()) {
	catcher.once.Do(startCatcher)
	catcher.mu.Lock()
	catcher.subs = append(catcher.subs, c)
	catcher.mu.Unlock()
	return func() {
		catcher.mu.Lock()
		defer catcher.mu.Unlock()
		if i := slices.Index(catcher.subs, c); i >= 0 {
			catcher.subs = slices.Delete(catcher.subs, i, i+1)
		}
	}
}

// startCatcher makes the pipe, starts its reader and installs the
// handlers. If the pipe cannot be made, the signals keep the runtime's
// handling.
func startCatcher() {
	if len(caughtSignals) == 0 {
		return
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return
	}
	catchFD = int64(p[1]) // never closed: a handler may write at any time
	go readCaught(os.NewFile(uintptr(p[0]), "signals"))
	for _, sig := range caughtSignals {
		if !hasSig(startIgnored, sig) {
			installCatch(sig)
		}
	}
}

// readCaught passes on each record the handler wrote that another process
// sent.
func readCaught(r io.Reader) {
	self := uint32(os.Getpid())
	var rec [16]byte
	for {
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			return
		}
		sig, code, pid := binary.NativeEndian.Uint32(rec[0:]), int32(binary.NativeEndian.Uint32(rec[4:])), binary.NativeEndian.Uint32(rec[8:])
		if !sentBy(code) || pid == self {
			continue
		}
		catcher.mu.Lock()
		for _, c := range catcher.subs {
			select { // as os/signal: a full channel loses it
			case c <- caught(sig):
			default:
			}
		}
		catcher.mu.Unlock()
	}
}

// sentBy reports whether si_code says a process sent the signal: kill(2)
// (SI_USER, which is also what the kernel's SIGPIPE for a write of our own
// carries, with our PID), sigqueue(3) (SI_QUEUE), tgkill(2) (SI_TKILL).
func sentBy(code int32) bool {
	const siUser, siQueue, siTkill = 0, -1, -6
	return code == siUser || code == siQueue || code == siTkill
}
