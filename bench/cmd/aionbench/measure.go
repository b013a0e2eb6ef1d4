package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// event is one line the child wrote.
type event = kit.Event

func readEvents(path string) []event { return kit.ReadEvents(path) }

// running is one wrapper process under measurement.
type running struct {
	*kit.Proc
	tool   string
	events string
	log    string
}

var errExited = errors.New("wrapper exited")

// start launches tool t for n secrets and returns at once.
func (b *bench) start(t tool, n int, v Variant, tag string) (*running, error) {
	dir := filepath.Join(b.work, fmt.Sprintf("%s-%d-%s", t.Name, n, v))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b.seq++
	events := filepath.Join(b.work, "events", fmt.Sprintf("%04d-%s-%s-%d.log", b.seq, tag, t.Name, n))
	cmd, err := t.command(b, n, v, dir, events)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("wrapper-%04d.log", b.seq))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r := &running{Proc: kit.NewProc(cmd), tool: t.Name, events: events, log: logPath}
	err = r.Start(lf)
	lf.Close() // the wrapper has its own copy
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", t.Name, err)
	}
	b.track(r, true)
	return r, nil
}

// logTail is the end of the wrapper's output, for error messages.
func (r *running) logTail() string { return kit.Tail(r.log, 1500) }

// waitEvent polls the events file (every millisecond: the timestamps come
// from the child, so polling only delays noticing, never the measurement).
func (r *running) waitEvent(timeout time.Duration, match func(event) bool) (event, error) {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		for _, e := range readEvents(r.events) {
			if match(e) {
				return e, nil
			}
		}
		if r.Exited() {
			return event{}, fmt.Errorf("%s: %w (%v) before the event; its log: %s", r.tool, errExited, r.Err, r.logTail())
		}
		if time.Now().After(deadline) {
			return event{}, fmt.Errorf("%s: no child event within %s; its log: %s", r.tool, timeout, r.logTail())
		}
		time.Sleep(time.Millisecond)
	}
}

// stop asks the wrapper to stop (SIGTERM, which each forwards to the
// child), then kills its process group and any child it started elsewhere.
func (b *bench) stop(r *running) {
	defer b.track(r, false)
	if !r.Exited() {
		_ = r.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.Done:
		case <-time.After(15 * time.Second):
			fmt.Fprintf(os.Stderr, "aionbench: %s did not stop in 15s; killing it\n", r.tool)
		}
	}
	pgid := r.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !r.Exited() {
		select {
		case <-r.Done:
		case <-time.After(5 * time.Second):
		}
	}
	for _, e := range readEvents(r.events) {
		if e.Kind == "start" && kit.IsExe(e.PID, b.child) {
			_ = syscall.Kill(e.PID, syscall.SIGKILL)
		}
	}
}

func (b *bench) track(r *running, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.procs[r] = true
	} else {
		delete(b.procs, r)
	}
}

// stopAll is the cleanup on interrupt.
func (b *bench) stopAll() {
	b.mu.Lock()
	rs := make([]*running, 0, len(b.procs))
	for r := range b.procs {
		rs = append(rs, r)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() { b.stop(r) })
	}
	wg.Wait()
}

// procStatus reads VmRSS and VmHWM (KiB) of pid.
func procStatus(pid int) (rss, hwm int, err error) {
	st, err := kit.ProcStatus(pid)
	return st["VmRSS"], st["VmHWM"], err
}

// LaunchRun is one launch → child start measurement.
type LaunchRun struct {
	Ms       float64        `json:"ms"`
	Requests int            `json:"requests"`
	ByPath   map[string]int `json:"by_path"`
	// The launch in three phases, from the audit log's clock: launch →
	// Vault receives the first request; → Vault answers the last request
	// before the child starts; → the child starts.
	BeforeVaultMs float64 `json:"before_vault_ms"`
	VaultMs       float64 `json:"vault_ms"`
	AfterVaultMs  float64 `json:"after_vault_ms"`
}

// launchOnce starts the tool, waits for the child's start line, checks the
// child got every variable, with count counts the Vault requests made before
// it started, and stops everything.
func (b *bench) launchOnce(t tool, n int, count bool) (LaunchRun, error) {
	if t.inProcess != nil {
		t0 := time.Now()
		if err := t.inProcess(b, n); err != nil {
			return LaunchRun{}, err
		}
		return LaunchRun{Ms: float64(time.Since(t0)) / 1e6}, nil
	}
	off := b.audit.size()
	r, err := b.start(t, n, Reload, "launch")
	if err != nil {
		return LaunchRun{}, err
	}
	defer b.stop(r)
	e, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
	if err != nil {
		return LaunchRun{}, err
	}
	if want := b.wantVars(t, n); e.NVars != want {
		return LaunchRun{}, fmt.Errorf("%s with %d secrets: child got %d bench variables, want %d", t.Name, n, e.NVars, want)
	}
	run := LaunchRun{Ms: float64(e.At.Sub(r.T0)) / 1e6}
	if !count {
		return run, nil
	}
	es, err := b.audit.requests(off)
	if err != nil {
		return LaunchRun{}, err
	}
	es = only(es, displayName(t.Name, n))
	run.Requests, run.ByPath = countBetween(es, r.T0, e.At)
	if first, last := vaultSpan(es, r.T0, e.At); !first.IsZero() && !last.IsZero() {
		run.BeforeVaultMs = float64(first.Sub(r.T0)) / 1e6
		run.VaultMs = float64(last.Sub(first)) / 1e6
		run.AfterVaultMs = float64(e.At.Sub(last)) / 1e6
	}
	return run, nil
}

// exitOnce starts the tool, waits for the child's start line, then ends the
// child itself (SIGTERM straight to it: the child writes its term line, with
// its own clock, and exits 0) and times how long the wrapper takes to exit
// after that. For the floor, the child is the process waited for: its figure
// is the instrument's own share (process exit and the wakeup of Wait).
func (b *bench) exitOnce(t tool, n int) (float64, error) {
	r, err := b.start(t, n, Reload, "exit")
	if err != nil {
		return 0, err
	}
	defer b.stop(r)
	e, err := r.waitEvent(b.startTimeout, func(e event) bool { return e.Kind == "start" })
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(e.PID, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("end the child of %s: %w", t.Name, err)
	}
	select {
	case <-r.Done:
	case <-time.After(b.startTimeout):
		return 0, fmt.Errorf("%s did not exit within %s of its child: %s", t.Name, b.startTimeout, r.logTail())
	}
	term, err := r.waitEvent(time.Second, func(x event) bool { return x.Kind == "term" && x.PID == e.PID })
	if err != nil {
		return 0, err
	}
	return float64(r.ExitAt.Sub(term.At)) / 1e6, nil
}

func (b *bench) wantVars(t tool, n int) int {
	if t.Name == "floor" || t.inProcess != nil {
		return 0
	}
	return n * kit.Fields
}
