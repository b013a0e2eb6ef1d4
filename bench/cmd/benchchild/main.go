// Command benchchild is the supervised child of the benchmarks. It appends
// one line per event to the file named by its first argument (or by
// $BENCH_EVENTS, which every wrapper passes on), each with its own
// CLOCK_REALTIME timestamp, so the measuring side reads when things happened
// from the child's point of view:
//
//	start PID UNIXNANO NVARS HASH   on start: NVARS is how many S###_F# variables it got, HASH their FNV-64a
//	hup PID UNIXNANO                on SIGHUP
//	term PID UNIXNANO               on SIGTERM or SIGINT, then it exits 0
//
// It must stay tiny and do nothing before taking the start time.
package main

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

// isBenchVar matches S###_F#=..., without regexp: no package init may
// run before the start time is taken that the floor does not also pay.
func isBenchVar(kv string) bool {
	return len(kv) > 7 && kv[0] == 'S' && digit(kv[1]) && digit(kv[2]) && digit(kv[3]) &&
		kv[4] == '_' && kv[5] == 'F' && digit(kv[6]) && kv[7] == '='
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

func main() {
	start := time.Now().UnixNano()
	path := os.Getenv("BENCH_EVENTS")
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "usage: benchchild [EVENTS-FILE]; or set BENCH_EVENTS")
		os.Exit(64)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchchild:", err)
		os.Exit(73)
	}
	// Signals are caught before the start line is written, so a signal
	// sent right after the measuring side sees the line is never lost.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)

	var vars []string
	for _, kv := range os.Environ() {
		if isBenchVar(kv) {
			vars = append(vars, kv)
		}
	}
	sort.Strings(vars)
	h := fnv.New64a()
	for _, kv := range vars {
		h.Write([]byte(kv))
		h.Write([]byte{0})
	}
	pid := os.Getpid()
	// One write per line: O_APPEND keeps lines of several children whole.
	fmt.Fprintf(f, "start %d %d %d %016x\n", pid, start, len(vars), h.Sum64())

	for s := range sig {
		now := time.Now().UnixNano()
		if s == syscall.SIGHUP {
			fmt.Fprintf(f, "hup %d %d\n", pid, now)
			continue
		}
		fmt.Fprintf(f, "term %d %d\n", pid, now)
		os.Exit(0)
	}
}
