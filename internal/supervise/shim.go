package supervise

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The shim starts a child that must begin with a signal ignored that Go's
// fork resets to its default (see noIgnore): the spawner forks and execs
// aion-exec itself as the shim, which sets the ignored signals and the
// mask and execs the program in the same process, with no fork between
// that would undo them. It costs a Go start-up per child, so it is used
// only then. argv: shimArg0, mask, ignored (hex), path, argv of the child.
// Fd 3 carries the errno of a failed exec back, or closes on success.
const shimArg0 = "aion-exec: signal shim"

// shimInit becomes the shim, from this package's init, before anything in
// the process but the runtime and its dependencies has run.
func shimInit() {
	if len(os.Args) < 5 || os.Args[0] != shimArg0 {
		return
	}
	err := runShim(os.Args[1], os.Args[2], os.Args[3], os.Args[4:])
	errno, ok := err.(syscall.Errno)
	if !ok {
		errno = syscall.EINVAL
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(errno))
	unix.Write(3, b[:])
	os.Exit(127)
}

func runShim(maskHex, ignHex, path string, argv []string) error {
	runtime.LockOSThread() // the mask is this thread's, which execs
	mask, err1 := strconv.ParseUint(maskHex, 16, 64)
	ign, err2 := strconv.ParseUint(ignHex, 16, 64)
	if err1 != nil || err2 != nil {
		return syscall.EINVAL
	}
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if hasSig(ign, sig) {
			if err := setIgnored(sig); err != nil {
				return err
			}
		}
	}
	if _, err := unix.FcntlInt(3, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return err
	}
	var set unix.Sigset_t
	set.Val[0] = mask
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil); err != nil {
		return err
	}
	return syscall.Exec(path, argv, os.Environ())
}

// forkShim starts argv through the shim with ign ignored. A failed exec
// comes back as its errno, and the shim, not registered, is reaped as an
// orphan.
func forkShim(path string, argv []string, attr *syscall.ProcAttr, ign uint64) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	a := *attr
	a.Files = append(slices.Clone(attr.Files), w.Fd())
	args := append([]string{shimArg0, strconv.FormatUint(startMask, 16), strconv.FormatUint(ign, 16), path}, argv...)
	pid, err := syscall.ForkExec("/proc/self/exe", args, &a)
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("exec the signal shim /proc/self/exe: %w", err)
	}
	var b [4]byte
	if n, _ := io.ReadFull(r, b[:]); n == len(b) {
		return 0, syscall.Errno(binary.LittleEndian.Uint32(b[:]))
	}
	return pid, nil
}
