// Command aionleases is the lease benchmark: one dynamic database secret
// (Vault's database engine, its PostgreSQL plugin, a real PostgreSQL) at a
// 1 h TTL / 24 h max TTL, compressed in time, rendered into a child's
// environment by aion-exec, consul-template and Vault Agent at once, each
// with a token of its own. It counts every tool's requests to Vault from
// the file audit device by class, per simulated hour and day, the child's
// restarts, and whether a child ever ran on a user whose lease had ended.
//
// bench/leases.sh builds everything, starts Vault and PostgreSQL, and calls
// it. It talks only to the loopback Vault it is given, bounds every wait,
// and leaves no process behind.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
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
			fmt.Fprintln(os.Stderr, "aionleases:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "render" {
		// aionleases render leases.json DIR: leases.md again from the
		// numbers of a run.
		if err := render(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "aionleases:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aionleases:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	vaultAddr, rootToken        string
	aion, ct, agent, child      string
	work, out                   string
	scale, days                 float64
	pgPort                      int
	pgUser, pgPassword          string
	plugin, tokenTTL            string
	versions                    string
	stopTimeout, setupTimeout   time.Duration
	watchEvery                  time.Duration
	credsPath, role, namePrefix string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("aionleases", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.vaultAddr, "vault-addr", "", "Vault's address (loopback)")
	fs.StringVar(&c.rootToken, "root-token", "root", "Vault's root token")
	fs.StringVar(&c.aion, "aion", "", "aion-exec binary")
	fs.StringVar(&c.ct, "ct", "", "consul-template binary")
	fs.StringVar(&c.agent, "agent", "", "vault binary (Vault Agent)")
	fs.StringVar(&c.child, "child", "", "benchchild binary")
	fs.StringVar(&c.work, "work", "", "scratch directory (the audit log is read from work/audit.log)")
	fs.StringVar(&c.out, "out", "", "where leases.json and leases.md go")
	fs.Float64Var(&c.scale, "scale", 240, "time compression: 1 h of lease time lasts 1h/scale")
	fs.Float64Var(&c.days, "days", 1.25, "simulated days to run")
	fs.IntVar(&c.pgPort, "pg-port", 0, "PostgreSQL's port on 127.0.0.1")
	fs.StringVar(&c.pgUser, "pg-user", "vault-admin", "the superuser Vault's plugin connects as")
	fs.StringVar(&c.pgPassword, "pg-password", "", "its password")
	fs.StringVar(&c.plugin, "plugin", "postgresql-database-plugin", "the database plugin's name in Vault's catalog")
	fs.StringVar(&c.tokenTTL, "token-ttl", "24h", "the tools' token TTL (real time, not compressed)")
	fs.StringVar(&c.versions, "versions", "", "tool=version;... for the report")
	fs.DurationVar(&c.stopTimeout, "stop-timeout", 20*time.Second, "how long a tool may take to stop before SIGKILL")
	fs.DurationVar(&c.setupTimeout, "setup-timeout", 60*time.Second, "bound of the Vault setup")
	fs.DurationVar(&c.watchEvery, "watch-every", time.Second, "how often Vault is asked for the leases' ends")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.credsPath, c.role, c.namePrefix = "database/creds/app", "app", "lease-"
	switch {
	case c.vaultAddr == "" || c.aion == "" || c.ct == "" || c.agent == "" || c.child == "" || c.work == "" || c.out == "":
		return c, errors.New("-vault-addr, -aion, -ct, -agent, -child, -work and -out are required")
	case c.pgPort == 0 || c.pgPassword == "":
		return c, errors.New("-pg-port and -pg-password are required")
	case !(c.scale >= 1) || !(c.days > 0) || c.days > 30:
		return c, errors.New("-scale must be at least 1 and -days in (0, 30]")
	}
	return c, nil
}

// leaseTimes are the role's TTLs at a compression: whole seconds, because
// Vault grants and reports leases in whole seconds; the effective scale
// follows from the rounded TTL.
func leaseTimes(scale float64) (ttl, maxTTL time.Duration, effective float64, err error) {
	ttl = time.Duration(float64(time.Hour) / scale).Round(time.Second)
	maxTTL = time.Duration(float64(24*time.Hour) / scale).Round(time.Second)
	if ttl < 2*time.Second {
		return 0, 0, 0, fmt.Errorf("scale %g makes the 1 h TTL %s: at least 2s is needed", scale, ttl)
	}
	return ttl, maxTTL, float64(time.Hour) / float64(ttl), nil
}

// proc is one running tool.
type proc struct {
	*kit.Proc
	name, dir, events string
	start             time.Time // once it was forked
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ttl, maxTTL, effScale, err := leaseTimes(c.scale)
	if err != nil {
		return err
	}
	day := maxTTL // one simulated day
	hour := ttl
	runFor := time.Duration(c.days * float64(day))
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "leases: "+format+"\n", a...) }

	root := &vaultAPI{Addr: c.vaultAddr, Token: c.rootToken, HC: &http.Client{Timeout: 10 * time.Second}}
	auditPath := filepath.Join(c.work, "audit.log")
	sctx, cancel := context.WithTimeout(ctx, c.setupTimeout)
	tokens, err := setupVault(sctx, root, Setup{
		PGPort: c.pgPort, PGUser: c.pgUser, PGPass: c.pgPassword, TTL: ttl, MaxTTL: maxTTL,
		AuditPath: auditPath, Plugin: c.plugin, TokenTTL: c.tokenTTL, DisplayPrefix: c.namePrefix,
		Tools: Tools, CreationSQL: creationSQL, RevocationSQL: revocationSQL, CredsPath: c.credsPath, Role: c.role,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("vault setup: %w", err)
	}
	logf("role %s: default_ttl %s, max_ttl %s (scale %.4g); %s of running = %.4g simulated days", c.role, ttl, maxTTL, effScale, runFor, c.days)

	loadStart := kit.Load1()
	wctx, wstop := context.WithCancel(context.Background())
	var watch leaseWatch
	var wwg sync.WaitGroup
	wwg.Go(func() { watch.run(wctx, root, c.credsPath, c.watchEvery) })
	defer func() { wstop(); wwg.Wait() }()

	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.kill() // a no-op for a tool stopped already
		}
	}()
	for _, name := range Tools {
		dir := filepath.Join(c.work, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		events := filepath.Join(dir, "events")
		var l launch
		switch name {
		case ToolAion:
			l, err = aionLaunch(c.aion, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		case ToolCT:
			l, err = ctLaunch(c.ct, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		case ToolAgent:
			l, err = agentLaunch(c.agent, c.child, c.vaultAddr, tokens[name], c.credsPath, dir, events)
		}
		if err != nil {
			return err
		}
		p, err := startProc(name, dir, events, l)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		// For leases.sh's cleanup, should this process be killed before
		// it could stop the tools: their process groups.
		if err := appendLine(filepath.Join(c.work, "pgids"), strconv.Itoa(p.Cmd.Process.Pid)); err != nil {
			return err
		}
	}
	logf("the three tools run; measuring for %s", runFor)

	exited := map[string]string{}
	deadline := time.NewTimer(runFor)
	defer deadline.Stop()
	progress := time.NewTicker(60 * time.Second)
	defer progress.Stop()
	anyDone := make(chan *proc, len(procs))
	for _, p := range procs {
		go func() { <-p.Done; anyDone <- p }()
	}
	t0 := time.Now()
wait:
	for {
		select {
		case <-ctx.Done():
			var swg sync.WaitGroup
			for _, p := range procs {
				swg.Go(func() { p.stop(5 * time.Second) })
			}
			swg.Wait()
			return ctx.Err()
		case <-deadline.C:
			break wait
		case p := <-anyDone:
			exited[p.name] = fmt.Sprintf("exited after %s: %v (see %s)", time.Since(p.start).Round(time.Second), p.Err, filepath.Join(p.dir, "log"))
			logf("%s %s", p.name, exited[p.name])
		case <-progress.C:
			logf("%.2f of %.4g simulated days", time.Since(t0).Seconds()/day.Seconds(), c.days)
		}
	}
	end := time.Now()
	loadEnd := kit.Load1()
	logf("stopping the tools")
	var swg sync.WaitGroup
	for _, p := range procs {
		swg.Go(func() { p.stop(c.stopTimeout) })
	}
	swg.Wait()
	wstop()
	wwg.Wait()
	expires, polls := watch.snapshot()

	f, err := os.Open(auditPath)
	if err != nil {
		return err
	}
	es, err := parseAudit(f)
	f.Close()
	if err != nil {
		return err
	}
	res := Result{
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadStart, LoadEnd: loadEnd,
			LoadAfter: kit.Load1(), Kernel: kit.Kernel()},
		Settings: Settings{Scale: c.scale, EffectiveScale: effScale, Days: c.days, TTL: ttl.String(), MaxTTL: maxTTL.String(),
			SimHour: hour.String(), SimDay: day.String(), RunSeconds: end.Sub(t0).Seconds(), TokenTTL: c.tokenTTL,
			Versions: parseVersions(c.versions), WatchPolls: polls, Started: t0.UTC()},
	}
	res.DocsPrediction = 39
	rng := rand.New(rand.NewPCG(uint64(t0.UnixNano()), 1))
	res.AionModel = aionModel(ttl, maxTTL, effScale, 5000, rng)
	res.AionModel1h = aionModel(time.Hour, 24*time.Hour, 1, 5000, rng)
	for _, p := range procs {
		evf, err := os.ReadFile(p.events)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		evs, err := parseEvents(strings.NewReader(string(evf)))
		if err != nil {
			return err
		}
		tr := analyzeTool(es, evs, expires, toolSpec{
			Name: p.name, Display: c.namePrefix + p.name, CredsPath: c.credsPath,
			Start: p.start, End: end, TTL: ttl, MaxTTL: maxTTL,
		})
		tr.Exited = exited[p.name]
		res.Tools = append(res.Tools, tr)
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	if err := writeResults(c.out, res); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(c.out, "leases.json"), filepath.Join(c.out, "leases.md"))
	for _, t := range res.Tools {
		logf("%-16s day 1: %d requests (%d creds, %d renew, %d token, %d other); %d child starts; expired held: %t",
			t.Name, t.Day1.Total, t.Day1.Creds, t.Day1.Renew, t.Day1.Token, t.Day1.Other, t.ChildStarts, t.ExpiredHeld)
	}
	return nil
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

func render(jsonPath, dir string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "leases.md"), []byte(markdown(r)), 0o644)
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

// parseVersions reads "a=1;b=2".
func parseVersions(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
