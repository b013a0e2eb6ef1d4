package supervise

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	helpers["stamp"] = helperStamp
	helperUsed.Store("stamp", true) // by benchmarks, which a plain test run skips
}

// helperStamp prints the monotonic clock and exits at once.
func helperStamp() {
	fmt.Println(monotonic())
	os.Exit(0)
}

func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// BenchmarkExitLatency measures from a child's exit (the last thing it
// does is read the clock, which all processes share, so the kernel's
// teardown of the child counts too) to Run's return: with a caller's
// signal channel, as aion-exec's main hands it over; with Run catching
// signals itself (its signal.Stop costs a round trip to the runtime's
// signal thread per signal); and, as the floor, a bare fork, exec and
// wait4 for that child.
func BenchmarkExitLatency(b *testing.B) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	b.Run("caller-signals", func(b *testing.B) {
		sigs := make(chan os.Signal, 64)
		benchExit(b, func(w *os.File) { runStamp(b, devnull, w, sigs) })
	})
	b.Run("run-signals", func(b *testing.B) {
		benchExit(b, func(w *os.File) { runStamp(b, devnull, w, nil) })
	})
	b.Run("floor-wait4", func(b *testing.B) {
		benchExit(b, func(w *os.File) {
			attr := &syscall.ProcAttr{Env: helperEnv("stamp"), Files: []uintptr{devnull.Fd(), w.Fd(), os.Stderr.Fd()}}
			pid, err := syscall.ForkExec(self(), []string{self()}, attr)
			if err != nil {
				b.Fatal(err)
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				b.Fatalf("wait4 = %v, %v", ws, err)
			}
		})
	})
}

func runStamp(b *testing.B, stdin, w *os.File, sigs chan os.Signal) {
	s := New(Options{Args: []string{self()}, Env: helperEnv("stamp"), Stdin: stdin, Stdout: w, Stderr: os.Stderr, Signals: sigs})
	if code, err := s.Run(context.Background()); code != 0 || err != nil {
		b.Fatalf("run = %d, %v", code, err)
	}
}

// benchExit runs run once per iteration, timing from the stamp its child
// writes to w to run's return, and reports the median and 90th percentile.
func benchExit(b *testing.B, run func(w *os.File)) {
	var lat []time.Duration
	for b.Loop() {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		run(w)
		end := monotonic()
		w.Close()
		sc := bufio.NewScanner(r)
		sc.Scan()
		r.Close()
		exited, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			b.Fatalf("stamp %q: %v", sc.Text(), err)
		}
		lat = append(lat, time.Duration(end-exited))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-median")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "µs-p90")
}
