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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "freeport":
		kit.Exit("aionleases", kit.PrintFreePort())
	case len(os.Args) == 4 && os.Args[1] == "render":
		// aionleases render leases.json DIR: leases.md again from the
		// numbers of a run.
		kit.Exit("aionleases", render(os.Args[2], os.Args[3]))
	default:
		kit.Exit("aionleases", kit.Run(func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stderr) }))
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

// leaseRun is one run of the three tools: its settings and processes.
type leaseRun struct {
	c           config
	ttl, maxTTL time.Duration // the role's; one simulated hour and day
	scale       float64       // the effective compression
	root        *vaultAPI
	stderr      io.Writer
	procs       []*proc
	exited      map[string]string // why a tool ended before the stop
	// t0 and end bound the measured run; the load averages are taken at
	// its ends.
	t0, end            time.Time
	loadStart, loadEnd float64
}

func (l *leaseRun) logf(format string, a ...any) {
	fmt.Fprintf(l.stderr, "leases: "+format+"\n", a...)
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
	l := &leaseRun{c: c, ttl: ttl, maxTTL: maxTTL, scale: effScale, stderr: stderr, exited: map[string]string{},
		root: &vaultAPI{Addr: c.vaultAddr, Token: c.rootToken, HC: &http.Client{Timeout: 10 * time.Second}}}
	tokens, err := l.setup(ctx)
	if err != nil {
		return err
	}
	l.loadStart = kit.Load1()
	wctx, wstop := context.WithCancel(context.Background())
	var watch leaseWatch
	var wwg sync.WaitGroup
	wwg.Go(func() { watch.run(wctx, l.root, c.credsPath, c.watchEvery) })
	defer func() { wstop(); wwg.Wait() }()
	defer l.killAll()
	if err := l.startTools(tokens); err != nil {
		return err
	}
	if err := l.wait(ctx); err != nil {
		return err
	}
	l.stopTools(c.stopTimeout)
	wstop()
	wwg.Wait()
	res, err := l.results(watch.snapshot())
	if err != nil {
		return err
	}
	return l.write(res)
}

// setup configures Vault, bounded by -setup-timeout, and returns the
// tools' tokens.
func (l *leaseRun) setup(ctx context.Context) (map[string]string, error) {
	c := l.c
	sctx, cancel := context.WithTimeout(ctx, c.setupTimeout)
	tokens, err := setupVault(sctx, l.root, Setup{
		PGPort: c.pgPort, PGUser: c.pgUser, PGPass: c.pgPassword, TTL: l.ttl, MaxTTL: l.maxTTL,
		AuditPath: l.auditPath(), Plugin: c.plugin, TokenTTL: c.tokenTTL, DisplayPrefix: c.namePrefix,
		Tools: Tools, CreationSQL: creationSQL, RevocationSQL: revocationSQL, CredsPath: c.credsPath, Role: c.role,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("vault setup: %w", err)
	}
	l.logf("role %s: default_ttl %s, max_ttl %s (scale %.4g); %s of running = %.4g simulated days", c.role, l.ttl, l.maxTTL, l.scale, l.runFor(), c.days)
	return tokens, nil
}

func (l *leaseRun) auditPath() string { return filepath.Join(l.c.work, "audit.log") }

// runFor is how long the tools run: -days simulated days.
func (l *leaseRun) runFor() time.Duration { return time.Duration(l.c.days * float64(l.maxTTL)) }

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
