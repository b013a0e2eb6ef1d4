// Command aion-exec reads secrets from Vault, renders them into environment
// variables and files, and runs a child process with them. main only
// gathers the process's arguments and streams; run does the rest.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	// First: a child of the same user must not read our environment or
	// memory from /proc, nor ptrace us (docs/supervise.md).
	if err := supervise.Harden(); err != nil {
		fmt.Fprintln(os.Stderr, "aion-exec:", err)
		os.Exit(sysexits.Software)
	}
	// aion-exec's heap is small and mostly garbage from each poll; the
	// default GOGC=100 lets it double before a collection and the process
	// settles near 16 MiB RSS. At 25 it settles near 13.5 MiB (measured
	// with 5 secrets at a 100ms poll); the extra collections cost
	// microseconds. The start runs at the default: it allocates a few MiB
	// at once (answers, templates), which at 25 would be several
	// collections between launch and the child's start (BENCHMARKS.md).
	// GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		time.AfterFunc(time.Second, func() { debug.SetGCPercent(25) })
	}
	os.Exit(run(context.Background(), os.Args[1:], streams{os.Stdin, os.Stdout, os.Stderr}))
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
