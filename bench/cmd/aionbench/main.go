// Command aionbench measures aion-exec against Vault Agent's exec mode and
// consul-template's exec mode on one Vault: launch → child start, RSS while
// supervising, binary size, Vault requests (from the file audit device) and
// KV write → child notified. bench/run.sh builds everything, starts Vault
// and calls it; it writes results as JSON and Markdown.
//
// It must only ever talk to the loopback Vault it is given, bound every wait,
// and leave no process behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "freeport" {
		kit.Exit("aionbench", kit.PrintFreePort())
		return
	}
	kit.Exit("aionbench", kit.Run(func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stderr) }))
}

// options are the command line.
type options struct {
	addr, rootToken, auditPath                string
	aionBin, agentBin, ctBin, ctFull, child   string
	work, out                                 string
	sizes                                     []int
	tools                                     []string
	runs, agentRuns, countedRuns, writes      int
	interval, superviseFor, steady, quietWait time.Duration
	withDefault                               bool
	quietLoad                                 float64
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("aionbench", flag.ContinueOnError)
	fs.StringVar(&o.addr, "vault-addr", "", "Vault address (a loopback dev server)")
	fs.StringVar(&o.rootToken, "root-token", "root", "token to seed with")
	fs.StringVar(&o.auditPath, "audit-log", "", "file of Vault's file audit device")
	fs.StringVar(&o.aionBin, "aion", "", "aion-exec binary")
	fs.StringVar(&o.agentBin, "agent", "", "vault binary (for vault agent)")
	fs.StringVar(&o.ctBin, "ct", "", "consul-template binary (stripped)")
	fs.StringVar(&o.ctFull, "ct-unstripped", "", "consul-template as go install builds it, for its size")
	fs.StringVar(&o.child, "child", "", "benchchild binary")
	fs.StringVar(&o.work, "work", "", "scratch directory")
	fs.StringVar(&o.out, "out", "", "directory for latest.json and latest.md")
	sizes := fs.String("sizes", "5,25,50,100", "numbers of secrets")
	tools := fs.String("tools", "floor,vault-floor,aion-exec,vault-agent,consul-template", "tools to measure")
	fs.IntVar(&o.runs, "runs", 20, "launch runs per fast tool and size")
	fs.IntVar(&o.agentRuns, "agent-runs", 5, "launch runs for Vault Agent (it waits 2 s by design)")
	fs.IntVar(&o.countedRuns, "counted-runs", 3, "launches with the audit device on, per tool and size (Vault Agent: 1)")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "poll / render interval for every tool")
	fs.DurationVar(&o.superviseFor, "supervise", 180*time.Second, "how long every wrapper supervises (all at once) for RSS and request counts")
	fs.DurationVar(&o.steady, "steady", 60*time.Second, "the last part of -supervise that counts as steady state")
	fs.IntVar(&o.writes, "writes", 8, "KV writes for change propagation")
	fs.BoolVar(&o.withDefault, "default-policy", false, "give the tools' token Vault's templated default policy too (slower Vault)")
	fs.Float64Var(&o.quietLoad, "quiet-load", 0, "first wait until the 1-minute load average is at most this (0: don't wait)")
	fs.DurationVar(&o.quietWait, "quiet-wait", 10*time.Minute, "longest wait for -quiet-load")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 999 {
			return o, fmt.Errorf("bad -sizes %q", *sizes)
		}
		o.sizes = append(o.sizes, n)
	}
	o.tools = strings.Split(*tools, ",")
	return o, nil
}

// bench holds one run's settings, the processes it has started and what
// it has measured so far.
type bench struct {
	vault       *vaultAPI
	audit       auditLog
	child       string
	work        string
	seq         int
	withDefault bool
	// tokens are the tools' tokens by display name (see tokenFor).
	tokens map[string]string

	interval, steady, superviseFor time.Duration
	startTimeout, changeTimeout    time.Duration
	writes                         int

	mu    sync.Mutex
	procs map[*running]bool

	stderr io.Writer
	res    *Results
	broken map[string]bool // tool@size that failed: skip the rest of it
}

func newBench(o options, stderr io.Writer) *bench {
	return &bench{
		vault:    &vaultAPI{Addr: strings.TrimRight(o.addr, "/"), Token: o.rootToken, HC: &http.Client{Timeout: 10 * time.Second}},
		audit:    auditLog{path: o.auditPath},
		child:    o.child,
		work:     o.work,
		interval: o.interval, steady: o.steady,
		startTimeout:  30 * time.Second,
		changeTimeout: 3*o.interval + 10*time.Second,
		writes:        o.writes,
		procs:         map[*running]bool{},
		tokens:        map[string]string{},
		withDefault:   o.withDefault,
		superviseFor:  o.superviseFor,
		stderr:        stderr,
		broken:        map[string]bool{},
	}
}

func (b *bench) logf(format string, a ...any) { fmt.Fprintf(b.stderr, "bench: "+format+"\n", a...) }

// fail records that what failed, and goes on.
func (b *bench) fail(what string, err error) {
	msg := fmt.Sprintf("%s: %v", what, err)
	b.logf("ERROR %s", msg)
	b.res.Errors = append(b.res.Errors, msg)
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	b := newBench(o, stderr)
	defer b.stopAll()
	if err := b.prepare(ctx, o); err != nil {
		return err
	}
	b.res = &Results{
		When: time.Now().UTC(), Machine: machine(), IntervalS: o.interval.Seconds(), Sizes: o.sizes,
		Runs: o.runs, AgentRuns: o.agentRuns, DefaultPolicy: o.withDefault,
		SuperviseS: o.superviseFor.Seconds(), SteadyS: o.steady.Seconds(),
	}
	var tools []tool
	for _, t := range []tool{floorTool(), vaultFloorTool(), aionTool(o.aionBin), agentTool(o.agentBin), ctTool(o.ctBin)} {
		if slices.Contains(o.tools, t.Name) {
			tools = append(tools, t)
		}
	}
	b.res.Tools = toolInfos(tools, o.ctFull)
	if err := b.measureLaunches(ctx, tools, o); err != nil {
		return err
	}
	if err := b.measureExits(ctx, tools, o); err != nil {
		return err
	}
	if err := b.setAudit(ctx, true); err != nil { // the supervision counts requests
		return err
	}
	if err := b.measureSupervision(ctx, tools, o.sizes); err != nil {
		return err
	}
	if err := b.measurePropagation(ctx, tools, o.sizes[0]); err != nil {
		return err
	}
	b.res.Machine.LoadEnd = kit.Load1()
	return b.write(o.out)
}

// prepare waits for Vault and, with -quiet-load, for a quiet machine, then
// seeds the secrets.
func (b *bench) prepare(ctx context.Context, o options) error {
	if err := os.MkdirAll(filepath.Join(b.work, "events"), 0o700); err != nil {
		return err
	}
	if err := waitHealthy(ctx, b.vault, 30*time.Second); err != nil {
		return err
	}
	if o.quietLoad > 0 {
		// Others' builds and tests on a shared machine inflate every time;
		// a bounded wait for a quiet spell keeps the numbers honest.
		deadline := time.Now().Add(o.quietWait)
		for i := 0; kit.Load1() > o.quietLoad && time.Now().Before(deadline) && i < 10000; i++ {
			if i%6 == 0 {
				b.logf("waiting for the load average (%.2f) to fall to %.2f, until %s", kit.Load1(), o.quietLoad, deadline.Format("15:04:05"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	}
	b.logf("seeding %d secrets of %d fields", slices.Max(o.sizes), kit.Fields)
	return setupVault(ctx, b.vault, slices.Max(o.sizes))
}

// write writes latest.json and latest.md into out; the run's errors are
// its error.
func (b *bench) write(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := kit.WriteJSON(filepath.Join(out, "latest.json"), b.res); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "latest.md"), []byte(markdown(b.res)), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s and %s", filepath.Join(out, "latest.json"), filepath.Join(out, "latest.md"))
	if len(b.res.Errors) > 0 {
		return errors.New(strings.Join(b.res.Errors, "\n"))
	}
	return nil
}
