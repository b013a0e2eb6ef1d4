package supervise

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Keep starts, once, a keeper for aion-exec's inotify instances (the file
// watches): a task that shares aion-exec's memory, holds those instances
// and nothing else of its descriptors, and waits for aion-exec to exit.
// Closing an inotify instance that holds a watch waits for an SRCU grace
// period of the kernel's (5-20 ms), and a process cannot exit before its
// descriptors are closed; with the keeper holding them, neither aion-exec's
// closing of a watch nor its exit releases one, and the exit is reported
// at once. The keeper releases them, and the address space, when it follows
// a moment later, and nobody waits for that.
//
// Call it once the watches are started: an instance made later is not
// held. The keeper shares the address space, so it is non-dumpable with
// aion-exec (Harden) and ps shows it with aion-exec's command line; its
// signals are all blocked and it makes raw system calls only. Once
// aion-exec is gone it is an orphan like any other, reaped by the nearest
// subreaper or init. Keep does nothing as PID 1 (the kernel ends the whole
// PID namespace before PID 1's exit is reported, so a keeper would gain
// nothing), with no watch, and off amd64.
func Keep() { keeperOnce.Do(keep) }

var (
	keeperOnce  sync.Once
	keeperAll   = ^uint64(0) // keeperStart's own: the mask it blocks, the one it restores
	keeperSaved uint64
	keeperFDs   [8]int64
	keeperN     int64
	keeperPidfd int64
	keeperStack [256]byte // the keeper's own: a pollfd and nothing else
	keeperName  = [16]byte{'a', 'i', 'o', 'n', '-', 'e', 'x', 'e', 'c', ' ', 'k', 'e', 'e', 'p'}

	_, _, _, _, _ = keeperAll, keeperSaved, keeperN, keeperName, keeperPidfd // read by keeperStart only
)

func keep() {
	if os.Getpid() == 1 || !keeperBuilt {
		return // as PID 1, the kernel ends the namespace before the exit shows
	}
	fds := inotifyFDs()
	if len(fds) == 0 || len(fds) >= len(keeperFDs) {
		return
	}
	// Opened here, not by the keeper after the clone: by then aion-exec
	// may be gone and its PID another process's.
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0) // close-on-exec always; a kernel before 5.3: no keeper
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	fds = append(fds, int64(pidfd))
	slices.Sort(fds)
	keeperPidfd, keeperN = int64(pidfd), int64(copy(keeperFDs[:], fds))
	keeperStart(uintptr(unsafe.Pointer(&keeperStack[len(keeperStack)-64])))
}

// inotifyFDs lists this process's inotify descriptors, in order.
func inotifyFDs() []int64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var fds []int64
	for _, e := range ents {
		fd, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:inotify" {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}
