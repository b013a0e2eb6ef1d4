// Command aionfleet is the fleet benchmark: hundreds of aion-exec
// instances, each with its own token and a benchchild, against one real
// Vault server (Raft storage, so it survives a stop and a start). It starts
// them all at once, measures a steady window (Vault requests from the file
// audit device, Vault CPU, every process's RSS), rotates secrets and checks
// that every child gets exactly one SIGHUP per rotation within one poll
// interval, stops Vault for an outage and counts the requests of the first
// second after it answers again against the steady rate. bench/fleet.sh
// builds everything and calls it; it writes fleet.json, fleet.md and
// fleet.png.
//
// It only ever talks to the loopback Vault it starts, bounds every wait and
// leaves no process behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		// Redraws fleet.md and fleet.png from a fleet.json.
		fs := flag.NewFlagSet("report", flag.ExitOnError)
		in := fs.String("in", "bench/results/fleet.json", "fleet results")
		out := fs.String("out", "bench/results", "directory for fleet.md and fleet.png")
		repeats := fs.String("repeats", "", "fleet.json files of other runs, comma-separated: summarised in fleet.json and fleet.md")
		_ = fs.Parse(os.Args[2:])
		kit.Exit("aionfleet", reportFile(*in, *out, *repeats))
		return
	}
	kit.Exit("aionfleet", kit.Run(func(ctx context.Context) error { return run(ctx, os.Args[1:]) }))
}

// options are the command line.
type options struct {
	vaultBin, aion, child, work, out                 string
	n, secrets, rotations                            int
	interval, outage, steady, margin, startupTimeout time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("aionfleet", flag.ContinueOnError)
	fs.StringVar(&o.vaultBin, "vault", "", "vault binary")
	fs.StringVar(&o.aion, "aion", "", "aion-exec binary (built by build.sh)")
	fs.StringVar(&o.child, "child", "", "benchchild binary")
	fs.StringVar(&o.work, "work", "", "scratch directory")
	fs.StringVar(&o.out, "out", "", "directory for fleet.json, fleet.md, fleet.png")
	fs.IntVar(&o.n, "n", 500, "instances")
	fs.IntVar(&o.secrets, "secrets", 5, "secrets per instance (5 fields each)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "AION_POLL_INTERVAL")
	fs.DurationVar(&o.outage, "outage", 30*time.Second, "how long Vault is down")
	fs.IntVar(&o.rotations, "rotations", 3, "rotations before the outage (one more after it)")
	fs.DurationVar(&o.steady, "steady", 60*time.Second, "steady window")
	fs.DurationVar(&o.margin, "margin", time.Second, "allowed beyond one interval for write → SIGHUP")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 120*time.Second, "AION_STARTUP_TIMEOUT")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.vaultBin == "" || o.aion == "" || o.child == "" || o.work == "" || o.out == "" || o.n < 1 || o.secrets < 1 || o.secrets > 999 {
		return o, errors.New("need -vault, -aion, -child, -work, -out, -n ≥ 1, 1 ≤ -secrets ≤ 999")
	}
	return o, nil
}

// fleet is one run's settings and processes.
type fleet struct {
	vault          *vaultServer
	aion, child    string
	work           string
	templates      string
	n, secrets     int
	interval       time.Duration
	startupTimeout time.Duration
	auditPath      string
	insts          []*instance
	res            *Results
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fleet %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	f, err := newFleet(o)
	if err != nil {
		return err
	}
	defer f.cleanup()
	if err := f.startVault(ctx); err != nil {
		return err
	}
	if err := f.prepareAll(ctx); err != nil {
		return err
	}
	// 1. Everything at once.
	if err := f.launch(ctx); err != nil {
		return err
	}
	// 2. Steady window, after one interval for the start burst to pass.
	if err := sleep(ctx, o.interval+o.interval/2); err != nil {
		return err
	}
	if err := f.steadyWindow(ctx, o.steady); err != nil {
		return err
	}
	// 3. Rotations, 4. the outage and one more rotation.
	if err := f.rotations(ctx, o); err != nil {
		return err
	}
	// 5. Stop the fleet, then count.
	if err := f.stopAndCount(); err != nil {
		return err
	}
	return f.write(o.out)
}
