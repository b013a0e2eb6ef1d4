//go:build integration

package integration

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSoak300Rotations: 300 password rotations in a row reach the child as
// exactly 300 SIGHUPs, and aion-exec's memory, goroutines and descriptors
// stay flat.
func TestSoak300Rotations(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	secret := func(i int) map[string]any {
		return map[string]any{"username": "u", "password": fmt.Sprintf("pw-%d", i), "host": "db1", "database": "app"}
	}
	v.KVPut("secret", "aionos/dev/db-main", secret(0))
	env, _ := watchEnv(t, v, "AION_POLL_INTERVAL=100ms")
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))

	const n = 300
	var base usage
	for i := 1; i <= n; i++ {
		v.KVPut("secret", "aionos/dev/db-main", secret(i))
		l := r.stdout.waitFor(t, fmt.Sprintf("sighup n=%d ", i), 10*time.Second)
		if pidOf(t, l) != pid || !strings.Contains(l, fmt.Sprintf(`pw-%d\"`, i)) {
			t.Fatalf("rotation %d: %s", i, l)
		}
		if i == 150 { // warmed up: the heap has reached its GC goal, code pages are in
			base = measure(t, r)
		}
	}
	end := measure(t, r)
	t.Logf("after 150 rotations: %+v; after %d: %+v", base, n, end)
	if got := strings.Count(r.stdout.text(), "sighup"); got != n {
		t.Errorf("%d SIGHUPs for %d rotations", got, n)
	}
	// A leak grows with the rotations (150 between the two samples); an
	// idle keep-alive connection to Vault opening or closing moves these
	// by one descriptor and two goroutines.
	if end.fds > base.fds+1 {
		t.Errorf("open descriptors went from %d to %d", base.fds, end.fds)
	}
	if end.goroutines > base.goroutines+2 {
		t.Errorf("goroutines went from %d to %d", base.goroutines, end.goroutines)
	}
	if end.rssKiB > base.rssKiB+2048 {
		t.Errorf("RSS grew from %d KiB to %d KiB", base.rssKiB, end.rssKiB)
	}
}

type usage struct{ rssKiB, fds, goroutines int }

var goroutinesRE = regexp.MustCompile(`msg=polled prog=aion-exec ok=true goroutines=(\d+)`)

// measure reads aion-exec's RSS and descriptors from /proc and its
// goroutine count from the next poll's debug line.
func measure(t *testing.T, r *running) usage {
	t.Helper()
	pid := r.cmd.Process.Pid
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	u.fds = len(fds)
	m := goroutinesRE.FindStringSubmatch(r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 5*time.Second))
	u.goroutines, _ = strconv.Atoi(m[1])
	return u
}
