//go:build integration

package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// failoverPoll is the poll interval of the services in front of a cluster.
const failoverPoll = time.Second

// arrival bounds how long a rotation written to the active node takes to
// reach the child: the next poll starts within one interval, a second
// interval covers one poll that failed on the way (a standby that has not
// yet found the new leader, a node that just died), and the margin covers
// a loaded 2-core machine (scheduling, a fresh TLS handshake, the
// standby's forwarding).
const arrival = 2*failoverPoll + time.Second

// clusterService seeds the db secret through the active node and returns
// watchEnv's service talking to addrs (comma-separated) with the cluster's
// root token and a one-second poll.
func clusterService(t *testing.T, c *Cluster, addrs string) []string {
	t.Helper()
	leader := c.Nodes[c.Leader()]
	leader.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "port": 5432, "database": "app"})
	env, _ := watchEnv(t, leader)
	env = replaceEnv(env, "AION_VAULT_ADDR", addrs)
	env = replaceEnv(env, "AION_VAULT_TOKEN", leader.rootToken)
	return replaceEnv(env, "AION_POLL_INTERVAL", failoverPoll.String())
}

// rotated writes pw-2 through node i, the active one, and returns the
// child's one SIGHUP line, which must come within arrival; it logs how long
// the rotation took.
func rotated(t *testing.T, c *Cluster, i int, r *running, pid int) string {
	t.Helper()
	wrote := time.Now()
	putPassword(c.Nodes[i], "pw-2")
	hup := r.stdout.waitFor(t, "sighup", arrival)
	t.Logf("a rotation written to node %d reached the child in %s (bound %s)", i, time.Since(wrote).Round(time.Millisecond), arrival)
	if !strings.Contains(hup, "pw-2") || pidOf(t, hup) != pid {
		t.Fatalf("after the rotation: %s (first pid %d)", hup, pid)
	}
	return hup
}

// settled waits for n polls after the rotation's decision line and checks
// the child: the same process since the start, one SIGHUP, never stopped.
func settled(t *testing.T, r *running, pid, n int) {
	t.Helper()
	r.stderr.waitFor(t, "secret db changed [password]", 5*time.Second)
	for range n {
		r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 10*time.Second)
	}
	out := r.stdout.text()
	if !alive(pid) || strings.Count(out, "ready") != 1 || strings.Count(out, "sighup") != 1 || strings.Contains(out, "term") {
		t.Errorf("want the first child (pid %d) untouched but for one SIGHUP:\n%s", pid, out)
	}
}

// TestFailoverStandbyLeaderStopped: aion-exec has one address, a standby's.
// The leader stops; the other two elect a new one. The child is untouched
// and a rotation written to the new leader arrives within two poll
// intervals (plus arrival's margin), timed from the write; the election is
// timed on its own.
func TestFailoverStandbyLeaderStopped(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	leader, standby := c.Leader(), c.Standbys()[0]
	env := clusterService(t, c, c.Nodes[standby].Addr)
	check := aion(t, env, "check")
	if want := "vault    " + c.Nodes[standby].Addr + " answered: standby, forwarding to the active node"; check.Code != 0 || !strings.Contains(check.Stdout, want) {
		t.Fatalf("check: exit %d, want a line %q:\n%s%s", check.Code, want, check.Stdout, check.Stderr)
	}
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))

	start := time.Now()
	c.Stop(leader)
	next := c.WaitLeader()
	t.Logf("node %d stopped; node %d active after %s (aion-exec talks to node %d)", leader, next, time.Since(start).Round(time.Millisecond), standby)
	rotated(t, c, next, r, pid)
	settled(t, r, pid, 3)
	if strings.Contains(r.stderr.text(), "moved on") {
		t.Errorf("one address, yet aion-exec moved on:\n%s", r.stderr.text())
	}
}

// TestFailoverMovesOnFromTheNodeInUse: aion-exec has all three addresses,
// the active node's first, and talks to it. That node is killed; the others
// elect a new leader. aion-exec moves on with exactly one log line, the next
// rotation arrives, and it stays on the node it moved to: through further
// polls and after the killed node is back, it opens no connection to the
// first address again.
func TestFailoverMovesOnFromTheNodeInUse(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	first := c.Leader()
	sb := c.Standbys()
	env := clusterService(t, c, c.Nodes[first].Addr+","+c.Nodes[sb[0]].Addr+","+c.Nodes[sb[1]].Addr)
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	if got := c.connected(t, r); !slices.Equal(got, []int{first}) {
		t.Fatalf("aion-exec is connected to nodes %v, want node %d's only", got, first)
	}

	start := time.Now()
	c.Kill(first)
	moved := r.stderr.waitFor(t, "vault address moved on", 30*time.Second)
	tookMove := time.Since(start)
	next := c.WaitLeader()
	t.Logf("node %d killed; aion-exec moved on after %s; node %d active after %s: %s",
		first, tookMove.Round(time.Millisecond), next, time.Since(start).Round(time.Millisecond), moved)
	to := slices.IndexFunc(sb, func(i int) bool { return strings.Contains(moved, "from="+c.Nodes[first].Addr+" to="+c.Nodes[i].Addr) })
	if to < 0 {
		t.Fatalf("want a move from node %d to node %d or %d: %s", first, sb[0], sb[1], moved)
	}
	rotated(t, c, next, r, pid)
	settled(t, r, pid, 3)

	c.Start(first)
	for range 3 {
		r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 10*time.Second)
	}
	if n := strings.Count(r.stderr.text(), "vault address moved on"); n != 1 {
		t.Errorf("%d 'moved on' lines, want exactly one:\n%s", n, r.stderr.text())
	}
	if got := c.connected(t, r); !slices.Equal(got, []int{sb[to]}) {
		t.Errorf("node %d is back; aion-exec is connected to nodes %v, want node %d's only", first, got, sb[to])
	}
}

// TestFailoverSkipsASealedNode: the node at the head of the list is sealed
// (a standby, restarted sealed) before aion-exec starts. aion-exec starts
// on the next node, the child runs and gets a rotation, and check says
// which address answered.
func TestFailoverSkipsASealedNode(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	sb := c.Standbys()
	head, second := sb[0], sb[1]
	c.Seal(head)
	if h, err := c.Nodes[head].Root.Sys().Health(); err != nil || !h.Sealed {
		t.Fatalf("node %d after Seal: %+v, %v", head, h, err)
	}
	addrs := c.Nodes[head].Addr + "," + c.Nodes[second].Addr + "," + c.Nodes[c.Leader()].Addr
	env := clusterService(t, c, addrs)

	check := aion(t, env, "check")
	want := "vault    " + c.Nodes[second].Addr + " (3 addresses) answered: standby, forwarding to the active node"
	if check.Code != 0 || !strings.Contains(check.Stdout, want) {
		t.Errorf("check: exit %d, want a line %q:\n%s%s", check.Code, want, check.Stdout, check.Stderr)
	}
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	moved := r.stderr.waitFor(t, "vault address moved on", 5*time.Second)
	if !strings.Contains(moved, "from="+c.Nodes[head].Addr+" to="+c.Nodes[second].Addr) {
		t.Errorf("want a move from the sealed node %d to node %d: %s", head, second, moved)
	}
	rotated(t, c, c.Leader(), r, pid)
	settled(t, r, pid, 2)
	if n := strings.Count(r.stderr.text(), "vault address moved on"); n != 1 {
		t.Errorf("%d 'moved on' lines, want exactly one:\n%s", n, r.stderr.text())
	}
}

// connected lists the nodes the aion-exec process of r holds an
// established TCP connection to. Vault's audit log says which node served
// a request, not which one aion-exec sent it to, while an idle keep-alive
// connection stays open for 90s after its last request. aion-exec is not
// dumpable; the suite runs as root, which may read its descriptors.
func (c *Cluster) connected(t *testing.T, r *running) []int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", r.cmd.Process.Pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if s, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ports := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != "01" || !inodes[fs[9]] {
			continue
		}
		_, hex, _ := strings.Cut(fs[2], ":")
		p, _ := strconv.ParseUint(hex, 16, 16)
		ports[strconv.FormatUint(p, 10)] = true
	}
	var out []int
	for i, v := range c.Nodes {
		u, err := url.Parse(v.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if ports[u.Port()] {
			out = append(out, i)
		}
	}
	return out
}

// TestFailoverFollowsAStandbysRedirect: a redirect goes where Vault said,
// not back to the node that gave it (found as a bug by this test). A standby that cannot forward a
// request to the active node answers 307 with the active node's address
// (Vault's respondStandby): seen in TestFailoverMovesOnFromTheNodeInUse
// while the killed leader's successor is elected, and for good when the
// cluster port between the nodes is closed. A redirector stands in for
// such a standby in front of a one-node Vault. With it as the only
// address, aion-exec follows each redirect once, to the address Vault
// named, as before several addresses; with the active node after it in
// the list, it works too. Either way the redirector sees at most one
// request per request that reaches Vault.
func TestFailoverFollowsAStandbysRedirect(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	v := startVaultConfig(t, t.TempDir(), signedBy(ca))
	v.initRaft()
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	audit := filepath.Join(t.TempDir(), "audit.log")
	if err := v.Root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": audit, "hmac_accessor": "false"}}); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	standby := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, v.Addr+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	cert, key := ca.loopbackCert(t)
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	standby.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	standby.StartTLS()
	t.Cleanup(standby.Close)

	for _, addrs := range []string{standby.URL, standby.URL + "," + v.Addr} {
		hits.Store(0)
		tok, err := v.Root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		env := replaceEnv(tokenEnv(v, tok.Auth.ClientToken), "AION_VAULT_ADDR", addrs)
		res := aion(t, append(env, "AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_STARTUP_TIMEOUT=5s"), "check")
		// check also asks sys/health, which Vault does not audit.
		served := len(auditPaths(t, audit, tok.Auth.Accessor)) + 1
		if res.Code != 0 || hits.Load() > int64(served) {
			t.Errorf("AION_VAULT_ADDR=%s: exit %d; the redirecting standby got %d requests for %d that reached Vault:\n%s%s",
				addrs, res.Code, hits.Load(), served, res.Stdout, res.Stderr)
		}
	}
}
