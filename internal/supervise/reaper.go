package supervise

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reap is the process's single waiter for children. A second waiter would
// race it: wait4(-1) in one place steals the status another waits for
// (ramr/go-reaper#2). So children are started here, and on every SIGCHLD
// each exited process is reaped here: a registered child's status goes to
// its Supervisor, anything else is an orphan that the kernel re-parented to
// us (as PID 1 or as subreaper), reaped so it does not stay a zombie.
var reap reaper

type reaper struct {
	life        sync.Mutex // serialises acquire and release
	users       int
	stop        chan struct{}
	done        chan struct{}
	sigchldOnce sync.Once
	sigchld     chan os.Signal

	// mu is held while forking, reaping and signalling, so a child is
	// registered before it can be reaped, and never signalled after it was
	// reaped (its PID may already be someone else's).
	mu       sync.Mutex
	children map[int]chan<- syscall.WaitStatus
	log      *slog.Logger // for orphans; the first active Supervisor's
	spawn    *spawner     // runs while anyone reaps; see spawner
	reply    chan spawnRes
}

// acquire starts reaping, if no Supervisor does yet; release stops it after
// the last one, reaping whatever exited up to then.
func (r *reaper) acquire(log *slog.Logger) (release func()) {
	r.life.Lock()
	defer r.life.Unlock()
	if r.users == 0 {
		if os.Getpid() != 1 {
			// Orphans of the child re-parent to us instead of init, so
			// they are reaped even when aion-exec is not PID 1, as with
			// tini -s. Without it the child still runs: warn only.
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				log.Warn("cannot become child subreaper; orphaned grandchildren will not be reaped", "err", err)
			}
		}
		r.sigchldOnce.Do(func() {
			// Caught for good: signal.Stop would cost a round trip to the
			// runtime's signal thread (up to ~0.7 ms measured on a busy
			// machine) between the child's exit and Run's return, and a
			// caught SIGCHLD does what the default does, nothing.
			r.sigchld = make(chan os.Signal, 1)
			signal.Notify(r.sigchld, syscall.SIGCHLD)
		})
		r.mu.Lock()
		r.log = log
		r.spawn, r.reply = startSpawner(), make(chan spawnRes, 1)
		r.mu.Unlock()
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.loop(r.sigchld, r.stop, r.done)
	}
	r.users++
	return r.release
}

func (r *reaper) release() {
	r.life.Lock()
	defer r.life.Unlock()
	if r.users--; r.users > 0 {
		return
	}
	close(r.stop)
	<-r.done
	// Every child was reaped (Run returns only then), so none can be left
	// to get the parent-death signal when the spawner's thread ends.
	r.mu.Lock()
	r.spawn.stop()
	r.spawn = nil
	r.mu.Unlock()
}

func (r *reaper) loop(sigchld chan os.Signal, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		// SIGCHLDs coalesce, so every wake-up reaps until none is left.
		r.reapAll()
		select {
		case <-sigchld:
		case <-stop:
			r.reapAll()
			return
		}
	}
}

func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			return
		}
		if ch, ok := r.children[pid]; ok {
			delete(r.children, pid)
			ch <- ws // buffered: never blocks
			continue
		}
		r.log.Debug("reaped orphan", "pid", pid, "code", exitCode(ws))
	}
}

// start forks and execs a child and registers it for its wait status.
func (r *reaper) start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := r.spawn.forkExec(path, argv, attr, r.reply)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	if r.children == nil {
		r.children = make(map[int]chan<- syscall.WaitStatus)
	}
	r.children[pid] = ch
	return pid, ch, nil
}

// kill sends sig to pid (its process group if group) unless pid was reaped.
func (r *reaper) kill(pid int, group bool, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.children[pid]; !ok {
		return syscall.ESRCH
	}
	if group {
		pid = -pid
	}
	return syscall.Kill(pid, sig)
}
