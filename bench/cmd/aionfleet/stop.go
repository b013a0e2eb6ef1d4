package main

import (
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// stopAndCount stops the fleet and Vault, then reads what happened from
// the children's events, the audit log and the instances' logs.
func (f *fleet) stopAndCount() error {
	res := f.res
	res.StopAt = time.Now()
	f.stopFleet()
	res.Machine.LoadEnd = loadAvg()
	f.integrity()
	if err := f.vault.stop(30 * time.Second); err != nil {
		res.fail("%v", err)
	}
	reqs, err := readAudit(f.auditPath)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	f.analyzeAudit(reqs)
	f.analyzeLogs()
	res.verdicts()
	return nil
}

// stopFleet sends every aion-exec SIGTERM (each forwards it to its child),
// waits, bounded, then kills what is left, children included.
func (f *fleet) stopFleet() {
	logf("stopping the fleet")
	for _, in := range f.alive() {
		_ = in.Cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(f.alive()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	f.res.Shutdown.StillRunningAfterS = len(f.alive())
	f.res.Shutdown.TookS = time.Since(f.res.StopAt).Seconds()
	f.killAll()
}

// killAll kills every instance's process group and child. Safe to call
// twice.
func (f *fleet) killAll() {
	evs := f.allEvents()
	for k, in := range f.insts {
		if in.Cmd.Process != nil {
			_ = syscall.Kill(-in.Cmd.Process.Pid, syscall.SIGKILL)
		}
		if pid := childPID(evs[k]); pid != 0 && kit.IsExe(pid, f.child) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.alive()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanup runs on every return: no process may outlive the run.
func (f *fleet) cleanup() {
	f.killAll()
	_ = f.vault.stop(10 * time.Second)
}

// integrity checks, from the children's events and the wrappers' exits,
// that nothing was restarted and nothing exited before the stop.
func (f *fleet) integrity() {
	res := f.res
	in := &res.Integrity
	want := len(res.Rotations)
	for k, es := range f.allEvents() {
		inst := f.insts[k]
		starts, hups, termsBefore := 0, 0, 0
		for _, e := range es {
			switch e.Kind {
			case "start":
				starts++
			case "hup":
				hups++
			case "term":
				if e.At.Before(res.StopAt) {
					termsBefore++
				}
			}
		}
		if starts == 1 {
			in.OneStart++
		} else {
			in.OtherStarts++
		}
		if hups == want {
			in.HupsAsRotations++
		}
		in.TermsBeforeStop += termsBefore
		if inst.Exited() && inst.ExitAt.Before(res.StopAt) {
			code := -1
			var ee *exec.ExitError
			if errors.As(inst.Err, &ee) {
				code = ee.ExitCode()
			}
			in.EarlyExits = append(in.EarlyExits, EarlyExit{Instance: inst.name, Code: code,
				AfterLaunchS: inst.ExitAt.Sub(res.Start.LaunchAt).Seconds(), LogTail: kit.Tail(inst.log, 600)})
		}
	}
	sort.Slice(in.EarlyExits, func(i, j int) bool { return in.EarlyExits[i].AfterLaunchS < in.EarlyExits[j].AfterLaunchS })
	in.EarlyExitCount = len(in.EarlyExits)
	if len(in.EarlyExits) > 10 {
		in.EarlyExits = in.EarlyExits[:10]
	}
}
