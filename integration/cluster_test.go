//go:build integration

package integration

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Cluster is three Vault servers on Raft storage on loopback, each with a
// TLS listener whose certificate one CA signed. Each server's config names
// the other two in retry_join stanzas, with that CA; node 1 is
// initialised, and nodes 2 and 3 join it; all share one unseal key and
// root token. KV v2 is mounted at secret/.
type Cluster struct {
	Nodes []*Vault
	CA    *testCA
	Root  *api.Client // root token client at the leader WaitLeader last found
	t     testing.TB
}

// startCluster starts the three nodes and returns once all are unsealed
// voters and one of them is the active node.
func startCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{CA: newCA(t), t: t}
	for i := range 3 {
		v := configVault(t, t.TempDir(), newVaultOptions(t, []vaultOption{signedBy(c.CA), raftNode(fmt.Sprintf("node%d", i+1))}))
		t.Cleanup(v.Stop)
		c.Nodes = append(c.Nodes, v)
	}
	for i, v := range c.Nodes {
		v.retryJoin(c.CA.CertFile, slices.Delete(slices.Clone(c.Nodes), i, i+1)...)
	}
	// Node 1 first: a node asks for a join challenge as it starts, then
	// every 2s (fixed in Vault), so nodes 2 and 3 started once node 1 is
	// initialised get theirs at once.
	first := c.Nodes[0]
	first.start()
	first.initRaft()
	// Autopilot adds a joining node as a non-voter and promotes it once it
	// has been healthy for server_stabilization_time (10s by default).
	// Health comes from the standby's heartbeats, every 5s and fixed in
	// Vault, so promotion still takes some 4s.
	first.Write("sys/storage/raft/autopilot/configuration", map[string]any{"server_stabilization_time": "1s"})
	for _, v := range c.Nodes[1:] {
		v.rootToken, v.unsealKey = first.rootToken, first.unsealKey
		v.start()
	}
	for i, v := range c.Nodes[1:] {
		// The unseal key answers node 1's challenge. Vault refuses it (not
		// initialised) until the node holds a challenge, and answers once
		// the node's next retry has joined.
		eventually(t, fmt.Sprintf("node %d joins", i+2), 30*time.Second, func() error {
			_, err := v.Root.Sys().Unseal(v.unsealKey)
			return err
		})
	}
	c.Root = first.Client(first.rootToken)
	c.WaitLeader()
	eventually(t, "three voters", 30*time.Second, func() error {
		s, err := c.Root.Logical().Read("sys/storage/raft/configuration")
		if err != nil {
			return err
		}
		servers, _ := s.Data["config"].(map[string]any)["servers"].([]any)
		voters := 0
		for _, srv := range servers {
			if srv.(map[string]any)["voter"] == true {
				voters++
			}
		}
		if voters != 3 {
			return fmt.Errorf("%d voters: %v", voters, servers)
		}
		return c.allUnsealed()
	})
	return c
}

// allUnsealed is nil when every running node is initialised and unsealed.
func (c *Cluster) allUnsealed() error {
	for i, v := range c.Nodes {
		if !v.running() {
			continue
		}
		if h, err := v.Root.Sys().Health(); err != nil || !h.Initialized || h.Sealed {
			return fmt.Errorf("node %d: %+v, %v", i, h, err)
		}
	}
	return nil
}

// Leader is the index of the node that is active right now.
func (c *Cluster) Leader() int {
	c.t.Helper()
	i, err := c.leader()
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// leader finds the one active node, which must also serve a request.
func (c *Cluster) leader() (int, error) {
	active := -1
	var errs []error
	for i, v := range c.Nodes {
		if !v.running() {
			continue
		}
		h, err := v.Root.Sys().Health()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("node %d: %w", i, err))
		case h.Initialized && !h.Sealed && !h.Standby:
			if active >= 0 {
				return -1, fmt.Errorf("nodes %d and %d are both active", active, i)
			}
			active = i
		}
	}
	if active < 0 {
		return -1, fmt.Errorf("no active node: %w", errors.Join(errs...))
	}
	if _, err := c.Nodes[active].Root.Sys().ListMounts(); err != nil {
		return -1, fmt.Errorf("node %d is active but does not serve: %w", active, err)
	}
	return active, nil
}

// WaitLeader waits until one node is active, points Root at it, and
// returns its index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	leader := -1
	eventually(c.t, "an active node", 30*time.Second, func() error {
		var err error
		leader, err = c.leader()
		return err
	})
	if err := c.Root.SetAddress(c.Nodes[leader].Addr); err != nil {
		c.t.Fatal(err)
	}
	return leader
}

// Standbys are the indexes of the running, unsealed nodes that are not
// active.
func (c *Cluster) Standbys() []int {
	c.t.Helper()
	var out []int
	for i, v := range c.Nodes {
		if !v.running() {
			continue
		}
		h, err := v.Root.Sys().Health()
		if err != nil {
			c.t.Fatalf("node %d: %v", i, err)
		}
		if !h.Sealed && h.Standby {
			out = append(out, i)
		}
	}
	return out
}

// Stop stops node i (SIGINT: an active node hands its leadership over).
func (c *Cluster) Stop(i int) { c.Nodes[i].Stop() }

// Kill kills node i (SIGKILL: the others notice only when its heartbeats
// stop).
func (c *Cluster) Kill(i int) { c.Nodes[i].Kill() }

// Start starts node i again on the same storage and unseals it.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	c.Nodes[i].start()
	c.Unseal(i)
}

// Seal leaves node i running and sealed. Vault seals only its active node
// through sys/seal ("vault cannot seal when in standby mode; please
// restart instead"), so a standby is restarted, which brings it back
// sealed.
func (c *Cluster) Seal(i int) {
	c.t.Helper()
	v := c.Nodes[i]
	h, err := v.Root.Sys().Health()
	if err != nil {
		c.t.Fatalf("seal node %d: %v", i, err)
	}
	if h.Standby {
		v.Stop()
		v.start()
		return
	}
	if err := v.Root.Sys().Seal(); err != nil {
		c.t.Fatalf("seal node %d: %v", i, err)
	}
}

// Unseal unseals node i and waits until every running node is unsealed.
func (c *Cluster) Unseal(i int) {
	c.t.Helper()
	c.Nodes[i].submitUnsealKey()
	eventually(c.t, fmt.Sprintf("node %d unsealed", i), 30*time.Second, c.allUnsealed)
}

// Addrs is every node's address, comma-separated.
func (c *Cluster) Addrs() string {
	var addrs []string
	for _, v := range c.Nodes {
		addrs = append(addrs, v.Addr)
	}
	return strings.Join(addrs, ",")
}

// TestClusterHarness proves the cluster: a write through the leader is
// read through every node (standbys forward to the active node), and
// after the leader stops the other two elect a new one and serve again.
func TestClusterHarness(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := startCluster(t)
	t.Logf("cluster of 3 up in %s: %s", time.Since(start).Round(time.Millisecond), c.Addrs())
	leader := c.Leader()
	if sb := c.Standbys(); len(sb) != 2 {
		t.Fatalf("standbys %v, want two", sb)
	}
	if _, err := c.Root.KVv2("secret").Put(t.Context(), "app/db", map[string]any{"password": "pw-1"}); err != nil {
		t.Fatal(err)
	}
	// Through each node with redirects off: a standby answers itself,
	// having forwarded the request to the active node, and sends no 307.
	readEach := func(want string) {
		t.Helper()
		for i, v := range c.Nodes {
			if !v.running() {
				continue
			}
			hc, err := v.newHTTPClient()
			if err != nil {
				t.Fatal(err)
			}
			direct := newAPIClient(t, &api.Config{Address: v.Addr, HttpClient: hc, DisableRedirects: true}, v.rootToken)
			s, err := direct.KVv2("secret").Get(t.Context(), "app/db")
			if err != nil || s.Data["password"] != want {
				t.Errorf("read via node %d: %v, %v; want %s", i, s, err, want)
			}
		}
	}
	readEach("pw-1")

	start = time.Now()
	c.Stop(leader)
	next := c.WaitLeader()
	t.Logf("node %d stopped; node %d active after %s", leader, next, time.Since(start).Round(time.Millisecond))
	if next == leader {
		t.Fatalf("node %d still the leader after it stopped", leader)
	}
	if _, err := c.Root.KVv2("secret").Put(t.Context(), "app/db", map[string]any{"password": "pw-2"}); err != nil {
		t.Fatal(err)
	}
	readEach("pw-2")

	start = time.Now()
	c.Start(leader)
	t.Logf("node %d back as a standby after %s", leader, time.Since(start).Round(time.Millisecond))
	eventually(t, "the restarted node serves the new write", 10*time.Second, func() error {
		s, err := c.Nodes[leader].Root.KVv2("secret").Get(t.Context(), "app/db")
		if err != nil {
			return err
		}
		if s.Data["password"] != "pw-2" {
			return fmt.Errorf("password %v", s.Data["password"])
		}
		return nil
	})
}
