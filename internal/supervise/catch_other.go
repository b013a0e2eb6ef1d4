//go:build !amd64

package supervise

import "syscall"

// caughtSignals is empty without catch_amd64.s: SIGPROF and 33 stay the
// runtime's, 32 and 34 keep their default, and SIGPIPE is caught by
// os/signal and dropped (Notify), since os/signal does not say who sent it.
var caughtSignals []syscall.Signal

func installCatch(syscall.Signal) {}
