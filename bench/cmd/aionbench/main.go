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
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "freeport" {
		if err := kit.PrintFreePort(); err != nil {
			fmt.Fprintln(os.Stderr, "aionbench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aionbench:", err)
		os.Exit(1)
	}
}

// bench holds one run's settings and the processes it has started.
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
}

// ToolInfo describes one tool's binary.
type ToolInfo struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Path            string `json:"path"`
	Bytes           int64  `json:"bytes"`
	Stripped        bool   `json:"stripped"`
	UnstrippedBytes int64  `json:"unstripped_bytes,omitempty"`
	Note            string `json:"note,omitempty"`
}

// LaunchResult is the launch measurement of one tool at one size.
type LaunchResult struct {
	Tool      string         `json:"tool"`
	N         int            `json:"secrets"`
	Runs      []LaunchRun    `json:"runs"`    // timed, audit device off
	Counted   []LaunchRun    `json:"counted"` // audit device on: requests and phases
	Stats     Stats          `json:"stats_ms"`
	StartReqs int            `json:"start_requests"` // median over runs
	ByPath    map[string]int `json:"start_by_path"`  // of the first run
	// Medians of the counted runs: their launch time and phases (see LaunchRun).
	CountedMs     float64 `json:"counted_ms"`
	BeforeVaultMs float64 `json:"before_vault_ms"`
	VaultMs       float64 `json:"vault_ms"`
	AfterVaultMs  float64 `json:"after_vault_ms"`
}

// ExitResult is child exit → wrapper exit of one tool at one size.
type ExitResult struct {
	Tool  string    `json:"tool"`
	N     int       `json:"secrets"`
	Runs  []float64 `json:"runs_ms"`
	Stats Stats     `json:"stats_ms"`
}

// SuperviseResult is the supervision measurement of one tool at one size.
type SuperviseResult struct {
	Tool string `json:"tool"`
	N    int    `json:"secrets"`
	Supervision
}

// Machine is where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	MemoryMiB int    `json:"memory_mib"`
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute figure when the run
	// began and ended: anything well above 0 means other work shared the
	// CPUs, and times are then upper bounds.
	LoadStart float64 `json:"load_1m_start"`
	LoadEnd   float64 `json:"load_1m_end"`
}

// Results is everything one run measured.
type Results struct {
	When        time.Time         `json:"when"`
	Machine     Machine           `json:"machine"`
	IntervalS   float64           `json:"poll_interval_s"`
	Sizes       []int             `json:"sizes"`
	Runs        int               `json:"runs"`
	AgentRuns   int               `json:"agent_runs"`
	Tools       []ToolInfo        `json:"tools"`
	Launch      []LaunchResult    `json:"launch"`
	Exit        []ExitResult      `json:"exit"`
	Supervise   []SuperviseResult `json:"supervise"`
	Propagation []Propagation     `json:"propagation"`
	Errors      []string          `json:"errors,omitempty"`
	SuperviseS  float64           `json:"supervise_s"` // every wrapper supervised this long, all at once
	SteadyS     float64           `json:"steady_s"`    // the last part of it that counts as steady state
	// DefaultPolicy: the tools' token had Vault's default policy (see tokenFor).
	DefaultPolicy bool `json:"default_policy"`
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("aionbench", flag.ContinueOnError)
	addr := fs.String("vault-addr", "", "Vault address (a loopback dev server)")
	rootToken := fs.String("root-token", "root", "token to seed with")
	auditPath := fs.String("audit-log", "", "file of Vault's file audit device")
	aionBin := fs.String("aion", "", "aion-exec binary")
	agentBin := fs.String("agent", "", "vault binary (for vault agent)")
	ctBin := fs.String("ct", "", "consul-template binary (stripped)")
	ctFull := fs.String("ct-unstripped", "", "consul-template as go install builds it, for its size")
	child := fs.String("child", "", "benchchild binary")
	work := fs.String("work", "", "scratch directory")
	out := fs.String("out", "", "directory for latest.json and latest.md")
	sizesFlag := fs.String("sizes", "5,25,50,100", "numbers of secrets")
	toolsFlag := fs.String("tools", "floor,vault-floor,aion-exec,vault-agent,consul-template", "tools to measure")
	runs := fs.Int("runs", 20, "launch runs per fast tool and size")
	agentRuns := fs.Int("agent-runs", 5, "launch runs for Vault Agent (it waits 2 s by design)")
	countedRuns := fs.Int("counted-runs", 3, "launches with the audit device on, per tool and size (Vault Agent: 1)")
	interval := fs.Duration("interval", 2*time.Second, "poll / render interval for every tool")
	superviseFor := fs.Duration("supervise", 180*time.Second, "how long every wrapper supervises (all at once) for RSS and request counts")
	steady := fs.Duration("steady", 60*time.Second, "the last part of -supervise that counts as steady state")
	writes := fs.Int("writes", 8, "KV writes for change propagation")
	withDefault := fs.Bool("default-policy", false, "give the tools' token Vault's templated default policy too (slower Vault)")
	quietLoad := fs.Float64("quiet-load", 0, "first wait until the 1-minute load average is at most this (0: don't wait)")
	quietWait := fs.Duration("quiet-wait", 10*time.Minute, "longest wait for -quiet-load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 999 {
			return fmt.Errorf("bad -sizes %q", *sizesFlag)
		}
		sizes = append(sizes, n)
	}
	want := strings.Split(*toolsFlag, ",")

	b := &bench{
		vault:    &vaultAPI{Addr: strings.TrimRight(*addr, "/"), Token: *rootToken, HC: &http.Client{Timeout: 10 * time.Second}},
		audit:    auditLog{path: *auditPath},
		child:    *child,
		work:     *work,
		interval: *interval, steady: *steady,
		startTimeout:  30 * time.Second,
		changeTimeout: 3**interval + 10*time.Second,
		writes:        *writes,
		procs:         map[*running]bool{},
		tokens:        map[string]string{},
		withDefault:   *withDefault,
		superviseFor:  *superviseFor,
	}
	defer b.stopAll()
	if err := os.MkdirAll(filepath.Join(b.work, "events"), 0o700); err != nil {
		return err
	}
	if err := waitHealthy(ctx, b.vault, 30*time.Second); err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	if *quietLoad > 0 {
		// Others' builds and tests on a shared machine inflate every time;
		// a bounded wait for a quiet spell keeps the numbers honest.
		deadline := time.Now().Add(*quietWait)
		for i := 0; kit.Load1() > *quietLoad && time.Now().Before(deadline) && i < 10000; i++ {
			if i%6 == 0 {
				logf("waiting for the load average (%.2f) to fall to %.2f, until %s", kit.Load1(), *quietLoad, deadline.Format("15:04:05"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	}
	logf("seeding %d secrets of %d fields", slices.Max(sizes), kit.Fields)
	if err := setupVault(ctx, b.vault, slices.Max(sizes)); err != nil {
		return err
	}

	res := &Results{
		When: time.Now().UTC(), Machine: machine(), IntervalS: interval.Seconds(), Sizes: sizes,
		Runs: *runs, AgentRuns: *agentRuns, DefaultPolicy: *withDefault,
		SuperviseS: superviseFor.Seconds(), SteadyS: steady.Seconds(),
	}
	var tools []tool
	for _, t := range []tool{floorTool(), vaultFloorTool(), aionTool(*aionBin), agentTool(*agentBin), ctTool(*ctBin)} {
		if slices.Contains(want, t.Name) {
			tools = append(tools, t)
		}
	}
	for _, t := range tools {
		if t.Binary == "" {
			continue
		}
		info := ToolInfo{Name: t.Name, Path: t.Binary, Version: version(t), Stripped: true}
		if fi, err := os.Stat(t.Binary); err == nil {
			info.Bytes = fi.Size()
		}
		switch t.Name {
		case "aion-exec":
			info.Note = "CGO_ENABLED=0 -trimpath -ldflags \"-s -w\""
		case "vault-agent":
			info.Note = "the whole vault binary, -tags minimal, -ldflags \"-s -w\" (integration/build-vault.sh); the release build with every plugin is ~475 MB"
		case "consul-template":
			info.Note = "CGO_ENABLED=0 -trimpath -ldflags \"-s -w\"; the unstripped size is what go install builds"
			if fi, err := os.Stat(*ctFull); err == nil {
				info.UnstrippedBytes = fi.Size()
			}
		}
		res.Tools = append(res.Tools, info)
	}
	fail := func(what string, err error) {
		msg := fmt.Sprintf("%s: %v", what, err)
		logf("ERROR %s", msg)
		res.Errors = append(res.Errors, msg)
	}
	broken := map[string]bool{} // tool@size that failed: skip the rest of it

	// 1. launch → child start. Timed with the audit device off: it makes
	// every Vault request slower (HMACs and a file write each), which is
	// the instrument's cost, not the tools'. Tools are interleaved round by
	// round so that a drift of the machine hits every tool alike. Then a
	// few launches with the audit device on count the requests at start
	// and split the launch into phases.
	for _, n := range sizes {
		byTool := map[string]*LaunchResult{}
		get := func(t tool) *LaunchResult {
			if byTool[t.Name] == nil {
				byTool[t.Name] = &LaunchResult{Tool: t.Name, N: n}
			}
			return byTool[t.Name]
		}
		if err := b.setAudit(ctx, false); err != nil {
			return err
		}
		for round := -1; round < *runs; round++ { // round -1 warms caches up
			for _, t := range tools {
				key := fmt.Sprintf("%s@%d", t.Name, n)
				if broken[key] || t.Name == "vault-agent" && round >= *agentRuns {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := b.launchOnce(t, n, false)
				if err != nil {
					fail(fmt.Sprintf("launch %s", key), err)
					broken[key] = true
					continue
				}
				if round >= 0 {
					get(t).Runs = append(get(t).Runs, r)
				}
			}
		}
		if err := b.setAudit(ctx, true); err != nil {
			return err
		}
		for round := 0; round < *countedRuns; round++ {
			for _, t := range tools {
				key := fmt.Sprintf("%s@%d", t.Name, n)
				if broken[key] || t.inProcess != nil || t.Name == "vault-agent" && round >= 1 {
					continue
				}
				r, err := b.launchOnce(t, n, true)
				if err != nil {
					fail(fmt.Sprintf("counted launch %s", key), err)
					broken[key] = true
					continue
				}
				lr := get(t)
				if lr.ByPath == nil {
					lr.ByPath = r.ByPath
				}
				lr.Counted = append(lr.Counted, r)
			}
		}
		for _, t := range tools {
			lr := byTool[t.Name]
			if lr == nil || len(lr.Runs) == 0 {
				continue
			}
			var ms, cms, reqs, before, during, after []float64
			for _, r := range lr.Runs {
				ms = append(ms, r.Ms)
			}
			for _, r := range lr.Counted {
				cms = append(cms, r.Ms)
				reqs = append(reqs, float64(r.Requests))
				before, during, after = append(before, r.BeforeVaultMs), append(during, r.VaultMs), append(after, r.AfterVaultMs)
			}
			lr.Stats = stats(ms)
			lr.StartReqs = int(median(reqs))
			lr.CountedMs, lr.BeforeVaultMs, lr.VaultMs, lr.AfterVaultMs = median(cms), median(before), median(during), median(after)
			res.Launch = append(res.Launch, *lr)
			logf("launch %-16s %3d secrets: median %8.2f ms  p90 %8.2f ms  requests %d", t.Name, n, lr.Stats.Median, lr.Stats.P90, lr.StartReqs)
		}
	}

	// 1b. child exit → wrapper exit, interleaved like the launches, at the
	// smallest and the largest size (a wrapper may clean up per secret).
	if err := b.setAudit(ctx, false); err != nil {
		return err
	}
	for _, n := range slices.Compact([]int{sizes[0], sizes[len(sizes)-1]}) {
		byTool := map[string]*ExitResult{}
		exitTools := tools
		if slices.ContainsFunc(tools, func(t tool) bool { return t.Name == "aion-exec" }) {
			exitTools = append(slices.Clone(tools), aionNoWatchTool(*aionBin))
		}
		for round := -1; round < *runs; round++ {
			for _, t := range exitTools {
				key := fmt.Sprintf("%s@%d", t.Name, n)
				if broken[key] || t.inProcess != nil || t.Name == "vault-agent" && round >= *agentRuns {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				x, err := b.exitOnce(t, n)
				if err != nil {
					fail(fmt.Sprintf("exit %s", key), err)
					broken[key] = true
					continue
				}
				if round < 0 {
					continue
				}
				if byTool[t.Name] == nil {
					byTool[t.Name] = &ExitResult{Tool: t.Name, N: n}
				}
				byTool[t.Name].Runs = append(byTool[t.Name].Runs, x)
			}
		}
		for _, t := range exitTools {
			if x := byTool[t.Name]; x != nil {
				x.Stats = stats(x.Runs)
				res.Exit = append(res.Exit, *x)
				logf("exit   %-16s %3d secrets: median %8.2f ms  p90 %8.2f ms", t.Name, n, x.Stats.Median, x.Stats.P90)
			}
		}
	}

	if err := b.setAudit(ctx, true); err != nil { // the supervision counts requests
		return err
	}

	// 2 and 4. RSS and steady-state requests while supervising: every
	// wrapper at every size at once, for minutes, since a Go wrapper's heap
	// takes dozens of polls to reach its first collection. Each has its own
	// token, so the audit log tells their requests apart.
	var jobs []job
	for _, n := range sizes {
		for _, t := range tools {
			if t.Name == "floor" || t.inProcess != nil || broken[fmt.Sprintf("%s@%d", t.Name, n)] {
				continue
			}
			jobs = append(jobs, job{t, n})
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	logf("supervising %d wrappers at once for %s", len(jobs), b.superviseFor)
	sups, errs := b.superviseAll(ctx, jobs)
	for _, err := range errs {
		fail("supervise", err)
	}
	for _, s := range sups {
		res.Supervise = append(res.Supervise, s)
		logf("supervise %-16s %3d secrets: RSS steady %6.1f MiB peak %6.1f MiB; requests per poll %.2f (a secret re-read every %.2f s)",
			s.Tool, s.N, mib(s.SteadyRSSKiB), mib(s.PeakRSSKiB), s.PerInterval, s.ReadPeriodS)
	}

	// 5. KV write → child notified, at the smallest size.
	n := sizes[0]
	for _, t := range tools {
		for _, v := range t.Variants {
			if t.inProcess != nil {
				continue
			}
			if broken[fmt.Sprintf("%s@%d", t.Name, n)] {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p, err := b.propagate(ctx, t, n, v)
			if err != nil {
				fail(fmt.Sprintf("change %s %s", t.Name, v), err)
				continue
			}
			res.Propagation = append(res.Propagation, p)
			logf("change %-16s %-7s: median %7.0f ms  max %7.0f ms  (%s)", t.Name, v, p.Stats.Median, p.Stats.Max, strings.Join(slices.Compact(slices.Clone(p.Kinds)), ","))
		}
	}

	res.Machine.LoadEnd = kit.Load1()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := kit.WriteJSON(filepath.Join(*out, "latest.json"), res); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "latest.md"), []byte(markdown(res)), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(*out, "latest.json"), filepath.Join(*out, "latest.md"))
	if len(res.Errors) > 0 {
		return errors.New(strings.Join(res.Errors, "\n"))
	}
	return nil
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// version asks the binary, bounded by a timeout.
func version(t tool) string {
	if t.Name == "consul-template" {
		return kit.Version(t.Binary, "-version")
	}
	return kit.Version(t.Binary, "version")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: kit.Load1()}
	m.CPUModel = kit.CPUModel()
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var sb strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			sb.WriteByte(byte(c))
		}
		m.Kernel = sb.String()
	}
	m.MemoryMiB = kit.MemoryMiB()
	return m
}
