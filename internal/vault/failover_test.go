package vault

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// kvNode is a fake Vault node that answers a token lookup, the mount
// listing and one secret, and counts the requests it got.
type kvNode struct {
	hits   atomic.Int32
	status int    // 0: serve; else answer every request with it
	body   string // with status
	only   string // with status: answer only requests for this path with it
}

func (n *kvNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.hits.Add(1)
	if n.status != 0 && (n.only == "" || n.only == r.URL.Path) {
		w.WriteHeader(n.status)
		io.WriteString(w, n.body)
		return
	}
	switch r.URL.Path {
	case "/v1/auth/token/lookup-self":
		io.WriteString(w, `{"data":{"accessor":"a","policies":["svc"],"ttl":0}}`)
	case "/v1/sys/internal/ui/mounts":
		io.WriteString(w, `{"data":{"secret":{"secret/":{"type":"kv","options":{"version":"2"}}}}}`)
	default:
		io.WriteString(w, `{"data":{"data":{"password":"p"},"metadata":{"version":1}}}`)
	}
}

func startNode(t *testing.T, n *kvNode) string {
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	return srv.URL
}

// downAddr is an address where nothing listens.
func downAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

func TestFailoverSkipsDownAndSealedNodes(t *testing.T) {
	sealed := &kvNode{status: 503, body: `{"errors":["Vault is sealed"]}`}
	good := &kvNode{}
	var logs bytes.Buffer
	c, err := New(Options{Addrs: []string{downAddr(t), startNode(t, sealed), startNode(t, good)}, KVMount: "secret",
		StartupTimeout: time.Second, Auth: AuthOptions{Method: "token", Token: "hvs.t"}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.ReadAll(ctx, []Ref{{Name: "app", Path: "app"}}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Addr() != c.opts.Addrs[2] {
		t.Errorf("in use: %s, want the third address", c.Addr())
	}
	// Once moved on, the client stays: the sealed node saw the first
	// requests only (the lookup and the listing, sent at once), not the
	// reads after them.
	if n := sealed.hits.Load(); n > 2 {
		t.Errorf("the sealed node got %d requests, want at most the first two", n)
	}
	if n := strings.Count(logs.String(), "vault address moved on"); n != 1 {
		t.Errorf("want one 'moved on' line, got %d:\n%s", n, logs.String())
	}
}

// A 429 with a long Retry-After: the next request does not reach Vault
// before it is over, it fails at once as rate limited.
func TestRetryAfterIsKept(t *testing.T) {
	limited := &kvNode{status: 429, body: `{"errors":["request path \"secret/data/app\": rate limit quota exceeded"]}`}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		limited.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := client(t, srv.URL)
	for i := range 3 {
		_, err := c.api.Logical().ReadWithContext(context.Background(), "secret/data/app")
		if err == nil || !Transient(err) || sysexits.Code(Fail("read", err)) != sysexits.Unavailable {
			t.Fatalf("request %d: %v, want a transient 429", i, err)
		}
	}
	if n := limited.hits.Load(); n != 1 {
		t.Errorf("Vault got %d requests; after its Retry-After of 60s it should get none", n)
	}
}

// limitedReads is a kvNode whose first n reads of secret/data/app (every
// one for n < 0) a rate-limit quota refuses with retryAfter, and the count
// of those reads.
func limitedReads(t *testing.T, retryAfter string, n int32) (string, *atomic.Int32) {
	reads := new(atomic.Int32)
	node := &kvNode{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/secret/data/app" && (reads.Add(1) <= n || n < 0) {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(429)
			io.WriteString(w, `{"errors":["request path \"secret/data/app\": rate limit quota exceeded"]}`)
			return
		}
		node.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, reads
}

// The first read is part of the start: a Vault that is limiting the first
// reads is waited for, not an exit.
func TestFirstReadWaitsWithinTheStartupTimeout(t *testing.T) {
	addr, reads := limitedReads(t, "0", 2)
	c := client(t, addr)
	c.opts.StartupTimeout = 30 * time.Second
	ctx := context.Background()
	if _, err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAll(ctx, []Ref{{Name: "app", Path: "app"}}); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if n := reads.Load(); n != 3 {
		t.Errorf("reads: %d, want 3 (two limited, one served)", n)
	}
}

// AION_STARTUP_TIMEOUT bounds the start, a Retry-After held in the
// transport included: a Vault that keeps limiting the first read with a
// Retry-After longer than the time left ends the start at the timeout, as
// rate limited, exit 69, not when the Retry-After is over.
func TestStartupTimeoutCutsARetryAfter(t *testing.T) {
	addr, reads := limitedReads(t, "4", -1)
	c := client(t, addr)
	const timeout = time.Second
	c.opts.StartupTimeout = timeout
	start := time.Now()
	if _, err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadAll(context.Background(), []Ref{{Name: "app", Path: "app"}})
	took := time.Since(start)
	if err == nil || sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "rate limited by Vault") ||
		!strings.Contains(err.Error(), "AION_STARTUP_TIMEOUT=1s") {
		t.Errorf("ReadAll: %v (exit %d), want rate limited, exit 69, naming AION_STARTUP_TIMEOUT", err, sysexits.Code(err))
	}
	// The margin is scheduling on a loaded machine; the Retry-After alone
	// would have held the read for 4 s.
	if took > timeout+500*time.Millisecond {
		t.Errorf("the start gave up after %s, want within AION_STARTUP_TIMEOUT=%s", took.Round(time.Millisecond), timeout)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("Vault got %d reads; within its Retry-After it should get one", n)
	}
}

// A standby that cannot serve, in Vault 1.19's own words, is left for the
// next address with one log line, and the client stays there; a 500 that
// merely mentions a leader is the request's own failure, which the next
// node would repeat: it is not a reason to move on.
func TestFailoverLeavesAStandbyThatCannotServe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		moves  bool
	}{
		{"standby forwarding, no active node", 500, `{"errors":["local node not active but active cluster node not found"]}`, true},
		{"standby redirecting, no active node", 503, `{"errors":["no active Vault instance found"]}`, true},
		{"sealed", 503, `{"errors":["Vault is sealed"]}`, true},
		{"removed from the cluster", 500, `{"errors":["rpc error: code = FailedPrecondition desc = node is not in HA cluster membership"]}`, true},
		{"a plugin's failure", 500, `{"errors":["1 error occurred:\n\t* the store's leader did not answer"]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := &kvNode{status: tc.status, body: tc.body, only: "/v1/secret/data/app"}
			good := &kvNode{}
			var logs bytes.Buffer
			c, err := New(Options{Addrs: []string{startNode(t, bad), startNode(t, good)}, KVMount: "secret",
				StartupTimeout: 300 * time.Millisecond, Auth: AuthOptions{Method: "token", Token: "hvs.t"}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Login(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, err = c.ReadAll(context.Background(), []Ref{{Name: "app", Path: "app"}})
			moved := strings.Count(logs.String(), "vault address moved on")
			if !tc.moves {
				if err == nil || moved != 0 || c.Addr() != c.opts.Addrs[0] {
					t.Errorf("read: %v; in use %s; moved on %d times, want the first node's failure and no move:\n%s", err, c.Addr(), moved, logs.String())
				}
				return
			}
			if _, err2 := c.ReadAll(context.Background(), []Ref{{Name: "app", Path: "app"}}); err != nil || err2 != nil {
				t.Fatalf("reads: %v, %v", err, err2)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if c.Addr() != c.opts.Addrs[1] || len(lines) != 1 || moved != 1 ||
				!strings.Contains(lines[0], "from="+c.opts.Addrs[0]+" to="+c.opts.Addrs[1]) {
				t.Errorf("in use %s, want the second address, and one log line of the move:\n%s", c.Addr(), logs.String())
			}
			if n := bad.hits.Load(); n != 3 {
				t.Errorf("the first node got %d requests, want 3 (lookup, listing, the first read), none after the move", n)
			}
		})
	}
}
