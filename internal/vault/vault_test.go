package vault

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/hashicorp/vault/api"
)

func TestResolve(t *testing.T) {
	c := &Client{opts: Options{KVMount: "secret"}}
	c.mounts.listed = true
	c.mounts.put("secret", 2, "kv")
	c.mounts.put("kv", 1, "kv")
	c.mounts.put("team/kv", 2, "kv")
	c.mounts.put("database", 0, "database")
	c.mounts.put("team/pki", 0, "pki")
	tests := []struct{ path, mount, rel string }{
		{"aionos/dev/db-main", "secret", "aionos/dev/db-main"},
		{"secret/aionos/dev/db-main", "secret", "aionos/dev/db-main"},
		{"secret/data/aionos/dev/db-main", "secret", "aionos/dev/db-main"},
		{"kv/aionos/db-main", "kv", "aionos/db-main"},
		{"kv/data/x", "kv", "data/x"}, // v1: data/ is a real path segment
		{"team/kv/data/app", "team/kv", "app"},
		{"database/creds/app", "database", "creds/app"}, // another engine: a leased secret
		{"team/pki/issue/web", "team/pki", "issue/web"},
		{"databases/x", "secret", "databases/x"}, // no mount: relative
		{"secretive/x", "secret", "secretive/x"},
	}
	for _, tt := range tests {
		m, rel, err := c.resolve(context.Background(), tt.path)
		if err != nil {
			t.Errorf("resolve(%q): %v", tt.path, err)
			continue
		}
		if m.path != tt.mount || rel != tt.rel || m.kv() != (m.engine == "kv") {
			t.Errorf("resolve(%q) = %s + %s, want %s + %s", tt.path, m.path, rel, tt.mount, tt.rel)
		}
	}
	c.opts.KVMount = "nope"
	if _, _, err := c.resolve(context.Background(), "a/b"); err == nil || sysexits.Code(err) != sysexits.Usage ||
		!strings.Contains(err.Error(), `no KV mount "nope" is visible to this token (AION_VAULT_KV_MOUNT)`) {
		t.Errorf("unknown mount: %v", err)
	}
}

// fake serves one canned status for every request: for injecting the
// faults a real Vault cannot be made to produce on demand.
func fake(t *testing.T, status int, body string) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return client(t, srv.URL)
}

func client(t *testing.T, addr string) *Client {
	c, err := New(Options{Addrs: []string{addr}, KVMount: "secret", Auth: AuthOptions{Method: "token", Token: "hvs.secret-token-value"},
		StartupTimeout: 300 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		status int
		body   string
		code   int
		msg    string
	}{
		{403, `{"errors":["permission denied"]}`, sysexits.NoPerm, "the token is invalid, expired or revoked"},
		{429, `{"errors":["request path \"x\": rate limit quota exceeded"]}`, sysexits.Unavailable, "rate limited by Vault"},
		{503, `{"errors":["Vault is sealed"]}`, sysexits.Unavailable, "Vault is sealed or unavailable"},
		{500, `{"errors":["internal error"]}`, sysexits.Unavailable, "internal error"},
	}
	for _, tt := range tests {
		c := fake(t, tt.status, tt.body)
		_, err := c.Login(context.Background())
		if err == nil {
			t.Fatalf("%d: login succeeded", tt.status)
		}
		if got := sysexits.Code(err); got != tt.code {
			t.Errorf("%d: exit code %d, want %d (%v)", tt.status, got, tt.code, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%d: error %q lacks %q", tt.status, err, tt.msg)
		}
		if strings.Contains(err.Error(), "secret-token-value") {
			t.Errorf("%d: error leaks the token: %q", tt.status, err)
		}
	}
}

// A Vault that accepts the connection and closes it half-way is transient:
// retried until the startup timeout, then exit 69.
func TestHalfClosedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			io.ReadAtLeast(conn, make([]byte, 16), 16)
			conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"da"))
			conn.Close()
		}
	}()
	c := client(t, "http://"+l.Addr().String())
	_, err = c.Login(context.Background())
	if got := sysexits.Code(err); got != sysexits.Unavailable {
		t.Errorf("half-closed: exit code %d, want 69 (%v)", got, err)
	}
}

// The SDK reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_WRAP_TTL from the
// process environment; only the validated configuration may count. OSS
// Vault has no namespaces, so the header is checked on the wire.
func TestClientIgnoresInheritedVaultEnv(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "hvs.inherited")
	t.Setenv("VAULT_NAMESPACE", "inherited-ns")
	t.Setenv("VAULT_WRAP_TTL", "5m")
	t.Setenv("VAULT_HEADERS", `{"X-Injected": "1"}`)
	type seen struct{ token, ns, wrap, injected string }
	got := make(chan seen, 10) // the token lookup and the mount listing
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("X-Vault-Token"), r.Header.Get("X-Vault-Namespace"), r.Header.Get("X-Vault-Wrap-TTL"), r.Header.Get("X-Injected")}
		io.WriteString(w, `{"data":{"accessor":"a","policies":["default"],"ttl":0,"renewable":false}}`)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{Addrs: []string{srv.URL}, KVMount: "secret", Auth: AuthOptions{Method: "token", Token: "hvs.configured"},
		Namespace: "team-a", StartupTimeout: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(got)
	n := 0
	for s := range got {
		n++
		if s != (seen{"hvs.configured", "team-a", "", ""}) {
			t.Errorf("request headers: %+v", s)
		}
	}
	if n == 0 {
		t.Error("no request seen")
	}
}

func TestActAt(t *testing.T) {
	for _, tt := range []struct {
		ttl       time.Duration
		renewable bool
		want      time.Duration
	}{
		{time.Hour, true, 40 * time.Minute},
		{time.Hour, false, 54 * time.Minute},
		{10 * time.Second, false, 8 * time.Second},
		{3 * time.Second, false, 1500 * time.Millisecond},
	} {
		if got := actAt(tt.ttl, tt.renewable); got != tt.want {
			t.Errorf("actAt(%s, %t) = %s, want %s", tt.ttl, tt.renewable, got, tt.want)
		}
	}
}

// Fail is the one mapping of Vault errors, for reads, logins and dev
// bootstrap alike.
func TestFailCodes(t *testing.T) {
	for _, tc := range []struct {
		status int
		errs   []string
		code   int
		msg    string
	}{
		{403, []string{"permission denied"}, sysexits.NoPerm, "write policy x: permission denied"},
		{400, []string{"invalid mount path"}, sysexits.Usage, "write policy x: invalid mount path"},
		{404, nil, sysexits.DataErr, "write policy x: Not Found"},
		{429, nil, sysexits.Unavailable, "write policy x: rate limited by Vault"},
		{503, []string{"Vault is sealed"}, sysexits.Unavailable, "write policy x: Vault is sealed or unavailable"},
		{500, nil, sysexits.Unavailable, "write policy x: Internal Server Error"},
	} {
		err := Fail("write policy x", &api.ResponseError{StatusCode: tc.status, Errors: tc.errs})
		if sysexits.Code(err) != tc.code || err.Error() != tc.msg {
			t.Errorf("Fail(%d) = %q (exit %d), want %q (exit %d)", tc.status, err, sysexits.Code(err), tc.msg, tc.code)
		}
	}
}
