//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// tinyChild is the signal-printing child for a fleet, in sh rather than
// Node: "ready", then a "sighup" line per SIGHUP, "term" on SIGTERM.
const tinyChild = `trap 'echo sighup pid=$$' HUP
trap 'kill $p; echo term pid=$$; exit 0' TERM
sleep 2147483647 & p=$!
echo ready pid=$$
while kill -0 $p 2>/dev/null; do wait $p; done`

const dbPath = "secret/data/aionos/dev/db-main"

// limited is a Vault with the db secret, a file audit device that also
// logs the requests a rate-limit quota rejects, and no quota yet. With
// retryAfter, a 429 has Vault's X-Ratelimit-* and Retry-After headers
// (off by default in Vault).
func limited(t *testing.T, retryAfter bool) (v *Vault, audit string) {
	t.Helper()
	v = startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	audit = filepath.Join(t.TempDir(), "audit.log")
	if err := v.Root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": audit}}); err != nil {
		t.Fatal(err)
	}
	v.Write("sys/quotas/config", map[string]any{"enable_rate_limit_audit_logging": true, "enable_rate_limit_response_headers": retryAfter})
	return v, audit
}

// quota limits every client address (the whole test is 127.0.0.1) to rate
// requests a second on path.
func (v *Vault) quota(name, path string, rate int) {
	v.Write("sys/quotas/rate-limit/"+name, map[string]any{"path": path, "rate": rate, "interval": "1s"})
}

// fleetPoll is the poll interval of a fleet's members.
const fleetPoll = time.Second

// fleetMember starts one aion-exec with the tiny child, the db secret and
// a poll of fleetPoll.
func fleetMember(t *testing.T, v *Vault, extra ...string) *running {
	t.Helper()
	env := append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_RENDER_DIR="+t.TempDir(), "AION_POLL_INTERVAL="+fleetPoll.String())
	return supervise(t, append(env, extra...), "sh", "-c", tinyChild)
}

// attempt is one read Vault's audit device logged, admitted or rejected by
// a quota.
type attempt struct {
	at       time.Time
	path     string
	rejected bool
}

// attempts are the reads Vault's audit device logged from since on, in the
// order it logged them; the test itself never reads a secret of the fleet.
func attempts(t *testing.T, audit string, since time.Time) []attempt {
	t.Helper()
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []attempt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Time    time.Time `json:"time"`
			Type    string    `json:"type"`
			Error   string    `json:"error"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != "request" || e.Request.Operation != "read" || e.Time.Before(since) {
			continue
		}
		out = append(out, attempt{e.Time, e.Request.Path, strings.Contains(e.Error, "rate limit quota exceeded")})
	}
	return out
}

// reads are the reads of the db secret from since on, admitted and
// rejected.
func reads(t *testing.T, audit string, since time.Time) (admitted, rejected []time.Time) {
	t.Helper()
	for _, a := range attempts(t, audit, since) {
		switch {
		case a.path != dbPath:
		case a.rejected:
			rejected = append(rejected, a.at)
		default:
			admitted = append(admitted, a.at)
		}
	}
	return admitted, rejected
}

// between counts the times in [from, to).
func between(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, at := range ts {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// busiest is the most times of ts, sorted, in any window of w within
// [from, to).
func busiest(ts []time.Time, w time.Duration, from, to time.Time) int {
	most := 0
	for i, at := range ts {
		if at.Before(from) || at.Add(w).After(to) {
			continue
		}
		n := 0
		for _, b := range ts[i:] {
			if !b.Before(at.Add(w)) {
				break
			}
			n++
		}
		most = max(most, n)
	}
	return most
}

// perSecond is n over the window in requests per second.
func perSecond(n int, from, to time.Time) float64 { return float64(n) / to.Sub(from).Seconds() }

// polls counts r's polls so far, ok or not.
func polls(r *running) int { return strings.Count(r.stderr.text(), "msg=polled") }

// pollAll waits until every member has polled n more times.
func pollAll(t *testing.T, fleet []*running, n int) {
	t.Helper()
	base := make([]int, len(fleet))
	for i, r := range fleet {
		base[i] = polls(r)
	}
	eventually(t, fmt.Sprintf("%d polls by every member", n), time.Duration(n)*5*time.Second, func() error {
		for i, r := range fleet {
			if got := polls(r) - base[i]; got < n {
				return fmt.Errorf("member %d polled %d times", i, got)
			}
		}
		return nil
	})
}

// TestRateLimitFleet: a fleet of 25 polling once a second (~26 reads/s)
// against a quota of 10 reads/s on the secret's mount. No child is
// disturbed (no exit, no restart, no SIGHUP without a change); a rotation
// written under the quota reaches every child, as exactly one SIGHUP, once
// the quota is lifted; and the reads Vault sees, admitted and rejected,
// stay within the fleet's own poll rate, on average and in every window of
// 1, 2 and 5 s: throttling does not add load, nor a retry loop
// (it did, found by this test: a rate-limited poll retried with the outage
// backoff, sooner than it polls; and Vault's Retry-After is "0" within a
// one-second window).
func TestRateLimitFleet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter bool
	}{{"vault's default", false}, {"retry-after", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rateLimitFleet(t, tc.retryAfter)
		})
	}
}

func rateLimitFleet(t *testing.T, retryAfter bool) {
	const members, rate = 25, 10
	v, audit := limited(t, retryAfter)
	fleet := make([]*running, members)
	for i := range fleet {
		fleet[i] = fleetMember(t, v)
	}
	for _, r := range fleet {
		r.stdout.waitFor(t, "ready", 30*time.Second)
	}
	pollAll(t, fleet, 2)
	free := time.Now()
	pollAll(t, fleet, 3)
	on := time.Now()
	v.quota("fleet", "secret/", rate)
	pollAll(t, fleet, 5)
	for i, r := range fleet {
		if strings.Contains(r.stdout.text(), "sighup") {
			t.Errorf("member %d: a SIGHUP without a change:\n%s", i, r.stdout.text())
		}
	}
	// The rotation competes with the fleet for the quota's reads.
	eventually(t, "the rotation written under the quota", 10*time.Second, func() error {
		_, err := v.Root.KVv2("secret").Put(t.Context(), "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db1", "database": "app"})
		return err
	})
	pollAll(t, fleet, 3)
	lift := time.Now()
	if _, err := v.Root.Logical().Delete("sys/quotas/rate-limit/fleet"); err != nil {
		t.Fatal(err)
	}
	caughtUp := 0
	for i, r := range fleet {
		if !strings.Contains(r.stdout.text(), "sighup") {
			caughtUp++
		}
		if hup := r.stdout.waitFor(t, "sighup", time.Until(lift.Add(10*time.Second))); !strings.Contains(hup, "sighup pid=") {
			t.Errorf("member %d: %s", i, hup)
		}
	}
	last := time.Since(lift)
	pollAll(t, fleet, 3)
	end := time.Now()

	throttled := 0
	for i, r := range fleet {
		out := r.stdout.text()
		if strings.Count(out, "ready") != 1 || strings.Count(out, "sighup") != 1 || strings.Contains(out, "term") {
			t.Errorf("member %d: want one child and one SIGHUP:\n%s", i, out)
		}
		select {
		case <-r.done:
			t.Errorf("member %d exited %d:\n%s", i, r.code, r.stderr.text())
		default:
		}
		if strings.Contains(r.stderr.text(), "rate limited by Vault") {
			throttled++
		}
	}
	admitted, rejected := reads(t, audit, free)
	nominal := perSecond(between(admitted, free, on), free, on)
	in, out := between(admitted, on, lift), between(rejected, on, lift)
	t.Logf("%d members; before the quota %.1f reads/s; under %d/s for %s: %.1f admitted/s, %.1f rejected/s (%d of %d members saw a 429); "+
		"%d caught up only after the lift, the last %s after it; after it %.1f reads/s, %d rejected",
		members, nominal, rate, lift.Sub(on).Round(time.Millisecond), perSecond(in, on, lift), perSecond(out, on, lift), throttled, members,
		caughtUp, last.Round(time.Millisecond), perSecond(between(admitted, lift, end), lift, end), between(rejected, lift, end))
	// Vault admits at most rate in each of its one-second windows; a window
	// straddling the measurement's edges adds at most one more.
	if max := rate * (lift.Sub(on).Seconds() + 1); float64(in) > max {
		t.Errorf("%d reads admitted in %s under a quota of %d/s", in, lift.Sub(on), rate)
	}
	if got := perSecond(in+out, on, lift); got > 1.2*nominal {
		t.Errorf("under the quota the fleet tried %.1f reads/s, more than its %.1f reads/s without one: throttling added load", got, nominal)
	}
	// Attempts, admitted and rejected, in every window of the quota's
	// time: no tight retry loop. Each member reads once a poll; its polls
	// come at least 0.9 interval apart (the jitter takes up to 10% off),
	// and a poll Vault rate-limited waits 1-4 intervals, never less than
	// one. So no member reads more than floor(w/0.9s)+1 times in any window
	// w, limited or not: the ceiling of the fleet without a quota, which
	// throttling may only lower. A bound by construction, not by chance:
	// measured 28-30 in 1s, 49-54 in 2s, 108-116 in 5s (eight runs)
	// against 50, 75 and 150. A limited poll retried on the outage backoff
	// (0.01-1s) with the transport's hold after a 429 removed as well made
	// 54-63, 94-97 and 171-210, while its mean rate passed the check above;
	// the outage backoff with the hold kept stays under (30-32, 51-53,
	// 117-119): the hold alone prevents a loop.
	tried := append(slices.Clone(admitted), rejected...)
	slices.SortFunc(tried, time.Time.Compare)
	for _, w := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
		ceiling := members * (int(w/(fleetPoll*9/10)) + 1)
		if n := busiest(tried, w, on, lift); n > ceiling {
			t.Errorf("under the quota the fleet tried %d reads in %s, more than its %d members can at their poll interval (%d): a retry loop", n, w, members, ceiling)
		} else {
			t.Logf("under the quota: at most %d reads tried in %s (ceiling %d)", n, w, ceiling)
		}
	}
	if throttled == 0 {
		t.Errorf("no member saw a 429: the quota did not bite")
	}
}

// TestRateLimitStart is the repro: ten instances started 0.3s
// apart against a quota of 4 reads/s, which the earlier ones' polls
// already exceed. Each reads a secret of its own under the quota's path, so
// that Vault's audit log tells whose first read it rejected. Some starters'
// first reads are rejected (else the test proves nothing); each of them
// logs the wait once and starts its child within AION_STARTUP_TIMEOUT.
// Before the fix, one whose first read met a 429 exited 69 ("rate limited
// by Vault").
//
// The fleet polls every 1.5s, not every second: Vault's quota windows are
// whole seconds from the first request, and a 1s poll (0-10% jitter)
// brings each admitted poller back at the same early point of the next
// window, so four pollers owned the quota and a starter, retrying at a
// random point, lost its first read 5-8 times (7-17s, once over 20s). A
// poll of 10s or more (1s of jitter or more) has no such phase; 1.5s
// breaks it while the fleet still asks ~7 reads/s of the 4.
func TestRateLimitStart(t *testing.T) {
	t.Parallel()
	const members, timeout = 10, 20 * time.Second
	v, audit := limited(t, false)
	path := func(i int) string { return fmt.Sprintf("aionos/dev/db-%d", i) }
	for i := range members {
		v.KVPut("secret", path(i), map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	}
	v.quota("start", "secret/data/aionos/dev/db-*", 4)
	from := time.Now()
	fleet := make([]*running, members)
	started := make([]time.Time, members)
	spread := time.NewTicker(300 * time.Millisecond) // the repro's arrivals, not a wait for an event
	defer spread.Stop()
	for i := range fleet {
		if i > 0 {
			<-spread.C
		}
		started[i] = time.Now()
		fleet[i] = fleetMember(t, v, "AION_STARTUP_TIMEOUT="+timeout.String(), "AION_DB_SECRET_PATH="+path(i), "AION_POLL_INTERVAL=1500ms")
	}
	took := make([]time.Duration, members)
	for i, r := range fleet {
		r.stdout.waitFor(t, "ready", time.Until(started[i].Add(timeout)))
		took[i] = logTime(t, r.stderr.waitFor(t, `msg="child started"`, time.Second)).Sub(started[i])
	}
	byPath := map[string][]attempt{}
	for _, a := range attempts(t, audit, from) {
		byPath[a.path] = append(byPath[a.path], a)
	}
	var limitedFirst []string
	for i, r := range fleet {
		tries := byPath["secret/data/"+path(i)]
		if len(tries) == 0 || !tries[0].rejected {
			continue
		}
		rejected := slices.IndexFunc(tries, func(a attempt) bool { return !a.rejected })
		limitedFirst = append(limitedFirst, fmt.Sprintf("%d (%d rejected, child after %s)", i, rejected, took[i].Round(time.Millisecond)))
		waits := strings.Count(r.stderr.text(), `msg="waiting for vault"`)
		if took[i] > timeout || waits != 1 || !strings.Contains(r.stderr.text(), `op="read secrets"`) {
			t.Errorf("member %d: first read rejected; want one 'waiting for vault' line for the read and the child within %s, got %d lines, child after %s",
				i, timeout, waits, took[i])
		}
	}
	t.Logf("%d of %d starters met a 429 at their first read: %s; the slowest started its child within %s",
		len(limitedFirst), members, strings.Join(limitedFirst, ", "), slices.Max(took).Round(time.Millisecond))
	if len(limitedFirst) == 0 {
		t.Errorf("no starter's first read was rejected: the quota did not bite at the start")
	}
}

// logTime is the time= of one of aion-exec's log lines.
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	f, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	at, err := time.Parse(time.RFC3339Nano, f)
	if err != nil {
		t.Fatalf("no time in %q: %v", line, err)
	}
	return at
}

// TestRateLimitStartGivesUp: a quota of one read an hour on the secret,
// which the test spends, so aion-exec's first read stays rate limited.
// With AION_STARTUP_TIMEOUT=3s it waits the whole timeout, never longer
// (before the fix a Retry-After held in the transport outlasted it: 3.86 s),
// then exits 69 with one line saying why, and no child starts. It does not
// loop either: the transport holds every request for at least a second
// after a 429.
func TestRateLimitStartGivesUp(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	v, audit := limited(t, false)
	v.Write("sys/quotas/rate-limit/hourly", map[string]any{"path": dbPath, "rate": 1, "interval": "1h"})
	if _, err := v.Root.Logical().Read(dbPath); err != nil {
		t.Fatalf("the quota's one read: %v", err)
	}
	if _, err := v.Root.Logical().Read(dbPath); err == nil || !strings.Contains(err.Error(), "rate limit quota exceeded") {
		t.Fatalf("a second read under the quota: %v, want it rejected", err)
	}
	from := time.Now()
	env := append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_RENDER_DIR="+t.TempDir(),
		"AION_STARTUP_TIMEOUT="+timeout.String())
	res := aion(t, env, "--", "sh", "-c", "echo child started")
	took := time.Since(from)
	_, rejected := reads(t, audit, from)
	t.Logf("exit %d after %s; Vault rejected %d reads:\n%s", res.Code, took.Round(time.Millisecond), len(rejected), res.Stderr)
	// The margin is the process's own start and exit on a loaded machine;
	// the wait for Vault is what must end at the timeout.
	if took < timeout || took > timeout+700*time.Millisecond {
		t.Errorf("exited after %s, want within [%s, %s]", took.Round(time.Millisecond), timeout, timeout+700*time.Millisecond)
	}
	var failed []string
	for _, l := range strings.Split(strings.TrimSpace(res.Stderr), "\n") {
		if !strings.Contains(l, "level=") {
			failed = append(failed, l)
		}
	}
	if res.Code != 69 || len(failed) != 1 || !strings.Contains(failed[0], "rate limited by Vault") ||
		!strings.Contains(failed[0], "AION_STARTUP_TIMEOUT="+timeout.String()) {
		t.Errorf("exit %d, want 69 and one error line saying rate limited and naming AION_STARTUP_TIMEOUT; got %q", res.Code, failed)
	}
	if n := strings.Count(res.Stderr, "waiting for vault"); n != 1 {
		t.Errorf("%d 'waiting for vault' lines, want one for the whole wait", n)
	}
	if strings.Contains(res.Stdout, "child started") || strings.Contains(res.Stderr, "child started") {
		t.Errorf("a child started:\n%s%s", res.Stdout, res.Stderr)
	}
	if len(rejected) < 2 || len(rejected) > int(timeout/time.Second)+1 {
		t.Errorf("Vault rejected %d reads in %s; want a retry or more, and none sooner than a second after a 429", len(rejected), timeout)
	}
}
