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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
		if err := reportFile(*in, *out, *repeats); err != nil {
			fmt.Fprintln(os.Stderr, "aionfleet:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "aionfleet:", err)
		os.Exit(1)
	}
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
	fs := flag.NewFlagSet("aionfleet", flag.ContinueOnError)
	vaultBin := fs.String("vault", "", "vault binary")
	aion := fs.String("aion", "", "aion-exec binary (built by build.sh)")
	child := fs.String("child", "", "benchchild binary")
	work := fs.String("work", "", "scratch directory")
	out := fs.String("out", "", "directory for fleet.json, fleet.md, fleet.png")
	n := fs.Int("n", 500, "instances")
	secrets := fs.Int("secrets", 5, "secrets per instance (5 fields each)")
	interval := fs.Duration("interval", 10*time.Second, "AION_POLL_INTERVAL")
	outage := fs.Duration("outage", 30*time.Second, "how long Vault is down")
	rotations := fs.Int("rotations", 3, "rotations before the outage (one more after it)")
	steady := fs.Duration("steady", 60*time.Second, "steady window")
	margin := fs.Duration("margin", time.Second, "allowed beyond one interval for write → SIGHUP")
	startupTimeout := fs.Duration("startup-timeout", 120*time.Second, "AION_STARTUP_TIMEOUT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vaultBin == "" || *aion == "" || *child == "" || *work == "" || *out == "" || *n < 1 || *secrets < 1 || *secrets > 999 {
		return errors.New("need -vault, -aion, -child, -work, -out, -n ≥ 1, 1 ≤ -secrets ≤ 999")
	}
	port, err := kit.FreePort()
	if err != nil {
		return err
	}
	cport, err := kit.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(*work, "vault.hcl")
	data := filepath.Join(*work, "vault-data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	// Integrated (Raft) storage, one node, as examples/compose runs it: the
	// data survives a stop and a start (the -tags minimal build has no file
	// storage).
	hcl := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "fleet-vault"
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr      = %q
cluster_addr  = "http://127.0.0.1:%d"
disable_mlock = true
ui            = false
log_level     = "info"
`, data, port, cport, addr, cport)
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	f := &fleet{
		vault: &vaultServer{bin: *vaultBin, config: cfg, logPath: filepath.Join(*work, "vault.log"),
			api: &vaultAPI{Addr: addr, HC: hc}},
		aion: *aion, child: *child, work: *work, templates: filepath.Join(*work, "templates"),
		n: *n, secrets: *secrets, interval: *interval, startupTimeout: *startupTimeout,
	}
	res := &Results{
		When: time.Now().UTC(), Machine: machine(),
		Settings: Settings{
			Instances: *n, Secrets: *secrets, FieldsPerSecret: kit.Fields, IntervalS: interval.Seconds(),
			OutageS: outage.Seconds(), Rotations: *rotations, SteadyS: steady.Seconds(), MarginS: margin.Seconds(),
			StartupTimeoutS: startupTimeout.Seconds(), Storage: "raft", TLS: false, VaultAddr: addr,
			AionVersion: kit.Version(*aion, "version"), VaultVersion: kit.Version(*vaultBin, "version"),
		},
	}
	f.res = res
	defer f.cleanup()

	// Vault: a real server, initialised with one key share, unsealed.
	logf("starting %s on %s (raft storage, plain HTTP on loopback)", res.Settings.VaultVersion, addr)
	if err := f.vault.start(); err != nil {
		return err
	}
	if _, err := f.vault.waitListening(ctx, 60*time.Second); err != nil {
		return err
	}
	root, err := f.vault.initialize(ctx)
	if err != nil {
		return err
	}
	if err := f.vault.unseal(ctx, 60*time.Second); err != nil {
		return err
	}
	f.vault.api.Token = root
	auditPath := filepath.Join(*work, "audit.log")
	if err := setup(ctx, f.vault.api, auditPath, *secrets); err != nil {
		return fmt.Errorf("set Vault up: %w", err)
	}
	logf("creating %d tokens", *n)
	tokens := make([]string, *n+1)
	{
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		sem := make(chan struct{}, 8)
		for i := 1; i <= *n; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				tok, err := createToken(ctx, f.vault.api, displayName(i))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				tokens[i] = tok
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			return fmt.Errorf("create tokens: %w (and %d more)", errs[0], len(errs)-1)
		}
	}
	if err := writeTemplates(f.templates, *secrets); err != nil {
		return err
	}
	for i := 1; i <= *n; i++ {
		in, err := f.prepare(i, tokens[i])
		if err != nil {
			return err
		}
		f.insts = append(f.insts, in)
	}

	// 1. Everything at once.
	logf("launching %d instances", *n)
	res.Start.LaunchAt = time.Now()
	for _, in := range f.insts {
		if err := in.start(); err != nil {
			res.fail("launch %s: %v", in.name, err)
		}
	}
	res.Start.LaunchLoopMs = ms(time.Since(res.Start.LaunchAt))
	if err := f.waitStarted(ctx, *startupTimeout+60*time.Second); err != nil {
		return err
	}
	logf("started: %d of %d children in %.1f s (launch → child start median %.0f ms, max %.0f ms); %d instances exited",
		res.Start.Started, *n, res.Start.SpreadS, res.Start.LaunchToChildMs.Median, res.Start.LaunchToChildMs.Max, res.Start.Exited)
	if res.Start.Started == 0 {
		return errors.New("no child started")
	}

	// 2. Steady window, after one interval for the start burst to pass.
	if err := sleep(ctx, *interval+*interval/2); err != nil {
		return err
	}
	if err := f.steadyWindow(ctx, *steady); err != nil {
		return err
	}

	// 3. Rotations.
	window := 2 * *interval
	for r := 1; r <= *rotations; r++ {
		rot, err := f.rotate(ctx, r, (r-1)%*secrets+1, window, *interval+*margin)
		if err != nil {
			return err
		}
		res.Rotations = append(res.Rotations, rot)
	}

	// 4. Outage.
	if err := f.outage(ctx, *outage); err != nil {
		return err
	}
	rot, err := f.rotate(ctx, *rotations+1, *rotations%*secrets+1, window, *interval+*margin)
	if err != nil {
		return err
	}
	rot.AfterOutage = true
	res.Rotations = append(res.Rotations, rot)
	res.EndRSS = f.sampleRSS()
	logf("after the run: aion-exec RSS median %.1f MiB, total %.0f MiB", mib(res.EndRSS.AionPerInstanceKiB.Median), mib(float64(res.EndRSS.AionTotalKiB)))

	// 5. Stop the fleet, then count.
	res.StopAt = time.Now()
	f.stopFleet()
	res.Machine.LoadEnd = loadAvg()
	f.integrity()
	if err := f.vault.stop(30 * time.Second); err != nil {
		res.fail("%v", err)
	}
	reqs, err := readAudit(auditPath)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	f.analyzeAudit(reqs)
	f.analyzeLogs()
	res.verdicts()
	return f.write(*out)
}

// waitStarted waits until every instance's child started or its aion-exec
// exited, bounded.
func (f *fleet) waitStarted(ctx context.Context, timeout time.Duration) error {
	res := f.res
	deadline := time.Now().Add(timeout)
	for {
		evs := f.allEvents()
		started, exited := 0, 0
		for k, in := range f.insts {
			switch {
			case childPID(evs[k]) != 0:
				started++
			case in.Exited():
				exited++
			}
		}
		if started+exited == len(f.insts) || time.Now().After(deadline) || ctx.Err() != nil {
			var lat []float64
			var last time.Time
			for k, in := range f.insts {
				for _, e := range evs[k] {
					if e.Kind == "start" {
						lat = append(lat, ms(e.At.Sub(in.T0)))
						if e.At.After(last) {
							last = e.At
						}
						if e.NVars != f.secrets*kit.Fields {
							res.fail("%s: child started with %d variables, want %d", in.name, e.NVars, f.secrets*kit.Fields)
						}
						break
					}
				}
			}
			res.Start.Started, res.Start.Exited = started, exited
			res.Start.LaunchToChildMs = stats(lat)
			res.Start.LastChildAt = last
			if !last.IsZero() {
				res.Start.SpreadS = last.Sub(res.Start.LaunchAt).Seconds()
			}
			if started+exited < len(f.insts) {
				res.fail("%d instances neither started a child nor exited within %s", len(f.insts)-started-exited, timeout)
			}
			return ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// alive are the instances whose aion-exec still runs.
func (f *fleet) alive() []*instance {
	var out []*instance
	for _, in := range f.insts {
		if !in.Exited() {
			out = append(out, in)
		}
	}
	return out
}

// steadyWindow measures Vault's and the fleet's CPU over the window and
// samples RSS every 10 s.
func (f *fleet) steadyWindow(ctx context.Context, d time.Duration) error {
	res := f.res
	logf("steady window: %s", d)
	sw := &res.Steady
	sw.From = time.Now()
	v0, _ := readProc(f.vault.pid())
	a0, c0 := f.fleetTicks()
	var last rssSample
	for t := time.Duration(0); ; t += 10 * time.Second {
		last = f.sampleRSS()
		sw.TotalRSSSeriesKiB = append(sw.TotalRSSSeriesKiB, last.AionTotalKiB)
		if t+10*time.Second > d {
			break
		}
		if err := sleep(ctx, time.Until(sw.From.Add(t+10*time.Second))); err != nil {
			return err
		}
	}
	if err := sleep(ctx, time.Until(sw.From.Add(d))); err != nil {
		return err
	}
	sw.To = time.Now()
	v1, _ := readProc(f.vault.pid())
	a1, c1 := f.fleetTicks()
	secs := sw.To.Sub(sw.From).Seconds()
	sw.WindowS = secs
	sw.VaultCPUPct = pct(v1.CPUTicks-v0.CPUTicks, secs)
	sw.AionCPUPct = pct(a1-a0, secs)
	sw.ChildCPUPct = pct(c1-c0, secs)
	sw.RSS = last
	logf("steady: Vault CPU %.1f%% of a core, all aion-exec %.1f%%; aion-exec RSS median %.1f MiB p90 %.1f max %.1f, total %.0f MiB; Vault RSS %.0f MiB",
		sw.VaultCPUPct, sw.AionCPUPct, mib(last.AionPerInstanceKiB.Median), mib(last.AionPerInstanceKiB.P90), mib(last.AionPerInstanceKiB.Max),
		mib(float64(last.AionTotalKiB)), mib(float64(last.VaultKiB)))
	return nil
}

func pct(ticks int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(ticks) / clkTck / secs * 100
}

// fleetTicks sums utime+stime of every live aion-exec and child.
func (f *fleet) fleetTicks() (aion, child int64) {
	evs := f.allEvents()
	for _, in := range f.alive() {
		if p, err := readProc(in.Cmd.Process.Pid); err == nil {
			aion += p.CPUTicks
		}
	}
	for k := range f.insts {
		if pid := childPID(evs[k]); pid != 0 && kit.IsExe(pid, f.child) {
			if p, err := readProc(pid); err == nil {
				child += p.CPUTicks
			}
		}
	}
	return aion, child
}

// sampleRSS reads VmRSS of every live aion-exec, child and Vault.
func (f *fleet) sampleRSS() rssSample {
	var s rssSample
	s.At = time.Now()
	evs := f.allEvents()
	var per, hwm, anon []float64
	for _, in := range f.alive() {
		p, err := readProc(in.Cmd.Process.Pid)
		if err != nil {
			continue
		}
		per = append(per, float64(p.RSSKiB))
		hwm = append(hwm, float64(p.HWMKiB))
		anon = append(anon, float64(p.AnonKiB))
		s.AionTotalKiB += p.RSSKiB
		s.AionAnonTotalKiB += p.AnonKiB
		s.AionPssTotalKiB += pssKiB(in.Cmd.Process.Pid)
	}
	var ch []float64
	for k := range f.insts {
		if pid := childPID(evs[k]); pid != 0 && kit.IsExe(pid, f.child) {
			if p, err := readProc(pid); err == nil {
				ch = append(ch, float64(p.RSSKiB))
				s.ChildTotalKiB += p.RSSKiB
				s.ChildPssTotalKiB += pssKiB(pid)
			}
		}
	}
	s.AionPerInstanceKiB, s.AionHWMKiB, s.AionAnonKiB, s.ChildPerInstanceKiB = stats(per), stats(hwm), stats(anon), stats(ch)
	if p, err := readProc(f.vault.pid()); err == nil {
		s.VaultKiB, s.VaultHWMKiB = p.RSSKiB, p.HWMKiB
	}
	return s
}

// rotate writes secret s anew and waits the window; then each child must
// have exactly one hup in it, within limit of the write.
func (f *fleet) rotate(ctx context.Context, r, s int, window, limit time.Duration) (Rotation, error) {
	rot := Rotation{N: r, Secret: kit.SecretName(s), LimitS: limit.Seconds(), WindowS: window.Seconds()}
	tw, err := writeSecret(ctx, f.vault.api, s)
	if err != nil {
		return rot, fmt.Errorf("rotation %d: %w", r, err)
	}
	rot.WrittenAt = tw
	alive := len(f.alive())
	// Wait for every child's hup (logged when the last arrives), then to
	// the end of the window: a second hup would show in it, since every
	// instance polls at least once more.
	reportedAll := false
	for time.Since(tw) < window {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return rot, err
		}
		if !reportedAll {
			got := 0
			for _, es := range f.allEvents() {
				if count(es, "hup", tw) > 0 {
					got++
				}
			}
			if got >= alive {
				reportedAll = true
				logf("rotation %d (%s): all %d children got SIGHUP after %.1f s", r, rot.Secret, got, time.Since(tw).Seconds())
			}
		}
	}
	end := tw.Add(window)
	var lat []float64
	for k, es := range f.allEvents() {
		n := 0
		for _, e := range es {
			if e.Kind != "hup" || e.At.Before(tw) || !e.At.Before(end) {
				continue
			}
			n++
			if n == 1 {
				d := e.At.Sub(tw)
				lat = append(lat, ms(d))
				if d > limit {
					rot.Late++
				}
			}
		}
		switch {
		case n == 0:
			rot.Missing++
			if len(rot.MissingNames) < 20 {
				rot.MissingNames = append(rot.MissingNames, f.insts[k].name)
			}
		case n > 1:
			rot.Extra++
		}
		rot.Hups += n
	}
	rot.Reached = len(lat)
	rot.LatencyMs, rot.Latencies = stats(lat), lat
	rot.Alive = alive
	logf("rotation %d (%s): %d of %d children signalled, %d with more than one hup, %d later than %s; write → hup median %.0f ms p90 %.0f max %.0f",
		r, rot.Secret, rot.Reached, len(f.insts), rot.Extra, rot.Late, limit, rot.LatencyMs.Median, rot.LatencyMs.P90, rot.LatencyMs.Max)
	return rot, nil
}

// outage stops Vault, waits, starts and unseals it, and watches the
// recovery for three intervals.
func (f *fleet) outage(ctx context.Context, d time.Duration) error {
	o := &f.res.Outage
	o.StopAt = time.Now()
	logf("outage: stopping Vault (SIGTERM)")
	if err := f.vault.stop(30 * time.Second); err != nil {
		f.res.fail("%v", err)
	}
	o.DownAt = time.Now()
	if err := sleep(ctx, d); err != nil {
		return err
	}
	o.StartAt = time.Now()
	logf("outage: starting Vault again after %.1f s down", o.StartAt.Sub(o.DownAt).Seconds())
	if err := f.vault.start(); err != nil {
		return err
	}
	if _, err := f.vault.waitListening(ctx, 60*time.Second); err != nil {
		return err
	}
	o.ListenAt = time.Now()
	if err := f.vault.unseal(ctx, 60*time.Second); err != nil {
		return err
	}
	o.ActiveAt = time.Now()
	logf("outage: Vault listening after %.2f s, unsealed and active after %.2f s", o.ListenAt.Sub(o.StartAt).Seconds(), o.ActiveAt.Sub(o.StartAt).Seconds())
	if err := sleep(ctx, 3*f.interval); err != nil {
		return err
	}
	if p, err := readProc(f.vault.pid()); err == nil {
		o.VaultCPUPctAfter = pct(p.CPUTicks, time.Since(o.StartAt).Seconds())
	}
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

// analyzeAudit counts the fleet's requests: per second over the run, in
// the steady window, and around the recovery.
func (f *fleet) analyzeAudit(reqs []auditRequest) {
	res := f.res
	t0 := res.Start.LaunchAt.Truncate(time.Second)
	end := res.StopAt
	nominal := float64(f.n*f.secrets) / f.interval.Seconds()
	res.Steady.NominalRate = nominal
	series := make([]int, int(end.Sub(t0).Seconds())+2)
	var fleetReqs []auditRequest
	for _, r := range reqs {
		if !strings.HasPrefix(r.Who, "fleet-") {
			continue
		}
		fleetReqs = append(fleetReqs, r)
		if i := int(r.At.Sub(t0) / time.Second); i >= 0 && i < len(series) {
			series[i]++
		}
	}
	res.Series = Series{T0: t0, PerSecond: series}
	sw := &res.Steady
	byPath := map[string]int{}
	for _, r := range fleetReqs {
		if !r.At.Before(sw.From) && r.At.Before(sw.To) {
			sw.Requests++
			byPath[r.Op+" "+pathClass(r.Path)]++
		}
	}
	sw.ByPath = byPath
	var secs []float64
	for i, c := range series {
		at := t0.Add(time.Duration(i) * time.Second)
		if !at.Before(sw.From) && !at.Add(time.Second).After(sw.To) {
			secs = append(secs, float64(c))
			sw.BusiestSecond = max(sw.BusiestSecond, c)
		}
	}
	sw.PerSecond = stats(secs)
	sw.BusiestSliding = busiestWindow(fleetReqs, sw.From, sw.To, time.Second)
	sw.LatencyMs = latencies(reqs, func(r auditRequest) bool { return !r.At.Before(sw.From) && r.At.Before(sw.To) })
	if sw.WindowS > 0 {
		sw.Rate = float64(sw.Requests) / sw.WindowS
	}
	o := &res.Outage
	// Recovery: from the first fleet request Vault served after its start.
	for _, r := range fleetReqs {
		if r.At.After(o.StartAt) && (o.FirstRequestAt.IsZero() || r.At.Before(o.FirstRequestAt)) {
			o.FirstRequestAt = r.At
		}
	}
	if o.FirstRequestAt.IsZero() {
		res.fail("no fleet request reached Vault after the outage")
		return
	}
	const after = 30
	o.AfterSeries = make([]int, after)
	recovered := map[string]bool{}
	for _, r := range fleetReqs {
		d := r.At.Sub(o.FirstRequestAt)
		if d >= 0 && d < after*time.Second {
			o.AfterSeries[int(d/time.Second)]++
		}
		if d >= 0 && r.Op == "read" && strings.HasPrefix(r.Path, "secret/data/fleet/") {
			recovered[r.Who] = true
		}
	}
	o.InstancesReadingAgain = len(recovered)
	// When each instance's first request after the recovery came: a
	// fleet spread by its backoff would come evenly over an interval.
	firstOf := map[string]time.Time{}
	for _, r := range fleetReqs {
		if !r.At.Before(o.FirstRequestAt) {
			if t, ok := firstOf[r.Who]; !ok || r.At.Before(t) {
				firstOf[r.Who] = r.At
			}
		}
	}
	o.FirstRequestBySecond = make([]int, int(f.interval.Seconds())+1)
	for _, t := range firstOf {
		k := min(int(t.Sub(o.FirstRequestAt)/time.Second), len(o.FirstRequestBySecond)-1)
		o.FirstRequestBySecond[k]++
	}
	for k := range 3 {
		from := o.FirstRequestAt.Add(time.Duration(k) * time.Second)
		o.LatencyMsBySecond = append(o.LatencyMsBySecond, latencies(reqs, func(r auditRequest) bool {
			return !r.At.Before(from) && r.At.Before(from.Add(time.Second))
		}))
	}
	o.FirstSecond = o.AfterSeries[0]
	for i, c := range o.AfterSeries {
		if c > o.MaxSecond {
			o.MaxSecond, o.MaxSecondIndex = c, i
		}
	}
	o.BusiestSliding = busiestWindow(fleetReqs, o.FirstRequestAt, o.FirstRequestAt.Add(after*time.Second), time.Second)
	o.RatioNominal = float64(o.FirstSecond) / nominal
	if sw.Rate > 0 {
		o.RatioMeasured = float64(o.FirstSecond) / sw.Rate
	}
	o.MaxRatioNominal = float64(o.MaxSecond) / nominal
	o.DownS = o.StartAt.Sub(o.DownAt).Seconds()
	o.UnavailableS = o.FirstRequestAt.Sub(o.StopAt).Seconds()
	logf("recovery: first second %d requests (%.2f× the nominal %.0f/s, %.2f× the measured %.1f/s); busiest second of 30: %d (+%d s); %d instances read again",
		o.FirstSecond, o.RatioNominal, nominal, o.RatioMeasured, sw.Rate, o.MaxSecond, o.MaxSecondIndex, o.InstancesReadingAgain)
}

// busiestWindow is the most requests in any window of length d that lies
// in [from, to), wherever it starts.
func busiestWindow(reqs []auditRequest, from, to time.Time, d time.Duration) int {
	var ts []time.Time
	for _, r := range reqs {
		if !r.At.Before(from) && r.At.Before(to) {
			ts = append(ts, r.At)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// latencies is Vault's time from request to response (both audit
// entries) of the fleet's requests that keep selects.
func latencies(reqs []auditRequest, keep func(auditRequest) bool) Stats {
	var xs []float64
	for _, r := range reqs {
		if strings.HasPrefix(r.Who, "fleet-") && !r.Answered.IsZero() && keep(r) {
			xs = append(xs, ms(r.Answered.Sub(r.At)))
		}
	}
	return stats(xs)
}

// pathClass folds the per-secret part of a path.
func pathClass(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && strings.HasPrefix(p, "secret/data/fleet/") {
		return p[:i] + "/*"
	}
	return p
}

// analyzeLogs counts, per instance, the log lines of a degraded and a
// recovered Vault, and collects the distinct error lines.
func (f *fleet) analyzeLogs() {
	l := &f.res.Logs
	distinct := map[string]int{}
	for _, in := range f.insts {
		b, _ := os.ReadFile(in.log)
		s := string(b)
		fails := strings.Count(s, "vault read failed")
		recs := strings.Count(s, "vault read recovered")
		if fails > 0 {
			l.InstancesDegraded++
		}
		if recs > 0 {
			l.InstancesRecovered++
		}
		l.ReadFailedLines += fails
		l.ReadRecoveredLines += recs
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				msg := line
				if i := strings.Index(line, "msg="); i >= 0 {
					msg = line[i:]
				}
				if len(msg) > 200 {
					msg = msg[:200]
				}
				distinct[msg]++
			}
		}
	}
	for m, c := range distinct {
		l.WarnOrError = append(l.WarnOrError, LogLine{Line: m, Count: c})
	}
	sort.Slice(l.WarnOrError, func(i, j int) bool { return l.WarnOrError[i].Count > l.WarnOrError[j].Count })
	if len(l.WarnOrError) > 15 {
		l.WarnOrError = l.WarnOrError[:15]
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(kib float64) float64    { return kib / 1024 }

// writeReport writes fleet.md and fleet.png.
func writeReport(res *Results, out string) error {
	if err := os.WriteFile(filepath.Join(out, "fleet.md"), []byte(markdown(res)), 0o644); err != nil {
		return err
	}
	if err := chart(res, filepath.Join(out, "fleet.png")); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

func reportFile(in, out, repeats string) error {
	r, err := readResults(in)
	if err != nil {
		return err
	}
	if repeats != "" {
		r.Repeats = nil
		for _, p := range strings.Split(repeats, ",") {
			o, err := readResults(p)
			if err != nil {
				return err
			}
			r.Repeats = append(r.Repeats, repeatOf(o))
		}
		sort.Slice(r.Repeats, func(i, j int) bool { return r.Repeats[i].When.Before(r.Repeats[j].When) })
		if err := kit.WriteJSON(filepath.Join(out, "fleet.json"), r); err != nil {
			return err
		}
	}
	return writeReport(r, out)
}

func readResults(path string) (*Results, error) {
	var r Results
	if err := kit.ReadJSON(path, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, s := range strings.Fields(string(b)) {
		if i < 3 {
			l[i], _ = strconv.ParseFloat(s, 64)
		}
	}
	return l
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAvg()}
	m.CPUModel = kit.CPUModel()
	m.Kernel, m.MemoryMiB = kit.Kernel(), kit.MemoryMiB()
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = int(rl.Cur)
	}
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances"); err == nil {
		m.InotifyMaxUserInstances, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return m
}

func (f *fleet) write(out string) error {
	res := f.res
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := kit.WriteJSON(filepath.Join(out, "fleet.json"), res); err != nil {
		return err
	}
	if err := writeReport(res, out); err != nil {
		return err
	}
	logf("wrote fleet.json, fleet.md and fleet.png to %s", out)
	for _, v := range res.Verdicts {
		logf("%-6s %s: %s (target %s)", map[bool]string{true: "MET", false: "MISSED"}[v.Met], v.What, v.Measured, v.Target)
	}
	if len(res.Errors) > 0 {
		return errors.New(strings.Join(res.Errors, "\n"))
	}
	return nil
}
