package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// proc is one running tool.
type proc struct {
	*kit.Proc
	name, dir, events string
	start             time.Time // once it was forked
}

// startTools writes each tool's configuration and starts it.
func (l *leaseRun) startTools(tokens map[string]string) error {
	c := l.c
	for _, name := range Tools {
		dir := filepath.Join(c.work, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		events := filepath.Join(dir, "events")
		var ln launch
		var err error
		switch name {
		case ToolAion:
			ln, err = aionLaunch(c.aion, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		case ToolCT:
			ln, err = ctLaunch(c.ct, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		case ToolAgent:
			ln, err = agentLaunch(c.agent, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		}
		if err != nil {
			return err
		}
		p, err := startProc(name, dir, events, ln)
		if err != nil {
			return err
		}
		l.procs = append(l.procs, p)
		// For leases.sh's cleanup, should this process be killed before
		// it could stop the tools: their process groups.
		if err := appendLine(filepath.Join(c.work, "pgids"), strconv.Itoa(p.Cmd.Process.Pid)); err != nil {
			return err
		}
	}
	l.logf("the three tools run; measuring for %s", l.runFor())
	return nil
}

// wait lets the tools run for -days simulated days, noting any that ends
// on its own; an interrupt stops them all and ends the run.
func (l *leaseRun) wait(ctx context.Context) error {
	deadline := time.NewTimer(l.runFor())
	defer deadline.Stop()
	progress := time.NewTicker(60 * time.Second)
	defer progress.Stop()
	anyDone := make(chan *proc, len(l.procs))
	for _, p := range l.procs {
		go func() { <-p.Done; anyDone <- p }()
	}
	l.t0 = time.Now()
	for {
		select {
		case <-ctx.Done():
			l.stopTools(5 * time.Second)
			return ctx.Err()
		case <-deadline.C:
			l.end = time.Now()
			l.loadEnd = kit.Load1()
			l.logf("stopping the tools")
			return nil
		case p := <-anyDone:
			l.exited[p.name] = fmt.Sprintf("exited after %s: %v (see %s)", time.Since(p.start).Round(time.Second), p.Err, filepath.Join(p.dir, "log"))
			l.logf("%s %s", p.name, l.exited[p.name])
		case <-progress.C:
			l.logf("%.2f of %.4g simulated days", time.Since(l.t0).Seconds()/l.maxTTL.Seconds(), l.c.days)
		}
	}
}

// stopTools stops every tool at once, each bounded by timeout.
func (l *leaseRun) stopTools(timeout time.Duration) {
	var wg sync.WaitGroup
	for _, p := range l.procs {
		wg.Go(func() { p.stop(timeout) })
	}
	wg.Wait()
}

// killAll is the cleanup on every return.
func (l *leaseRun) killAll() {
	for _, p := range l.procs {
		p.kill() // a no-op for a tool stopped already
	}
}

func startProc(name, dir, events string, l launch) (*proc, error) {
	lf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(l.bin, l.args...)
	cmd.Env, cmd.Dir = l.env, dir
	p := &proc{Proc: kit.NewProc(cmd), name: name, dir: dir, events: events}
	err = p.Start(lf)
	lf.Close() // the tool has its own copy
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.start = time.Now()
	return p, nil
}

// stop asks the tool to stop (SIGTERM: aion-exec revokes its lease, the
// peers stop their child), then kills its process group after timeout;
// the group is killed in any case, for a child left behind.
func (p *proc) stop(timeout time.Duration) {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(timeout):
	}
	p.kill()
}

func (p *proc) kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
	}
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
