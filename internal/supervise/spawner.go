package supervise

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawner is the one OS thread that forks every child. The kernel sends a
// child its parent-death signal when the thread that forked it exits, not
// when the process does, and Go retires threads whenever a goroutine that
// locked one returns. So every ForkExec runs here, on a thread that is
// locked and never given back while a child it started may run: the reaper
// stops it only once every Supervisor has reaped its child.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	path  string
	argv  []string
	attr  *syscall.ProcAttr
	reply chan<- spawnRes
}

type spawnRes struct {
	pid int
	err error
}

func startSpawner() *spawner {
	sp := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go sp.loop()
	return sp
}

func (sp *spawner) loop() {
	defer close(sp.done)
	// Never unlocked: the thread ends with this goroutine, which returns
	// only when no child of its thread is left.
	runtime.LockOSThread()
	for req := range sp.reqs {
		pid, err := forkExec(req.path, req.argv, req.attr)
		req.reply <- spawnRes{pid, err}
	}
}

// forkExec starts a child from the spawner thread; the reply channel is
// the caller's, so a request allocates nothing here.
func (sp *spawner) forkExec(path string, argv []string, attr *syscall.ProcAttr, reply chan spawnRes) (int, error) {
	sp.reqs <- spawnReq{path, argv, attr, reply}
	res := <-reply
	return res.pid, res.err
}

// stop ends the thread, once its children are all gone.
func (sp *spawner) stop() {
	close(sp.reqs)
	<-sp.done
}

// forkExec runs on the spawner thread. The child starts with the mask of
// the thread that forked it (the runtime saves it before fork and restores
// it in the child): the spawner holds aion-exec's mask at start meanwhile,
// even the signals Go keeps unblocked on its threads.
func forkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	if set, ok := childMask(); ok {
		var old unix.Sigset_t
		if err := unix.PthreadSigmask(unix.SIG_SETMASK, set, &old); err != nil {
			return 0, err
		}
		defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	}
	if ign := startIgnored & noIgnore; ign != 0 {
		return forkShim(path, argv, attr, ign)
	}
	return syscall.ForkExec(path, argv, attr)
}
