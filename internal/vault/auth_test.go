package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// roleVault is a fake Vault for faults a real one cannot be made to
// produce on demand at a chosen request: it logs AppRole in with a new
// token each time, and serves one KV-v2 secret to the live token.
type roleVault struct {
	mu     sync.Mutex
	live   string // the token Vault knows; "" after a revocation
	issued int
	denyKV bool // the live token lacks a policy
}

func (v *roleVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tok := r.Header.Get("X-Vault-Token")
	switch {
	case r.URL.Path == "/v1/auth/approle/login":
		v.issued++
		v.live = fmt.Sprintf("hvs.token-%d", v.issued)
		fmt.Fprintf(w, `{"auth":{"client_token":%q,"accessor":"a","token_policies":["svc"],"lease_duration":3600,"renewable":true}}`, v.live)
	case tok == "" || tok != v.live:
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":["permission denied"]}`)
	case r.URL.Path == "/v1/auth/token/lookup-self":
		io.WriteString(w, `{"data":{"accessor":"a","policies":["svc"],"ttl":3600,"renewable":true}}`)
	case r.URL.Path == "/v1/sys/internal/ui/mounts":
		io.WriteString(w, `{"data":{"secret":{"secret/":{"type":"kv","options":{"version":"2"}}}}}`)
	case r.URL.Path == "/v1/secret/data/app" && !v.denyKV:
		io.WriteString(w, `{"data":{"data":{"password":"p"},"metadata":{"version":1}}}`)
	default:
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":["permission denied"]}`)
	}
}

func (v *roleVault) revoke() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.live = ""
}

func appRoleClient(t *testing.T, addr string, logs io.Writer) *Client {
	t.Helper()
	c, err := New(Options{Addrs: []string{addr}, KVMount: "secret", StartupTimeout: time.Second,
		Auth: AuthOptions{Method: "approle", Mount: "approle", RoleID: "r", SecretID: "0d7ff1a3-6b1b-4a57-8f8f-3d4c2c1b0a99"},
		Log:  slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeadTokenLogsInAgain(t *testing.T) {
	v := &roleVault{}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	c := appRoleClient(t, srv.URL, &logs)
	ctx := context.Background()
	if _, err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	refs := []Ref{{Name: "app", Path: "app"}}
	if _, err := c.ReadAll(ctx, refs); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		v.revoke()
		got, err := c.ReadAll(ctx, refs)
		if err != nil || got[0].Data["password"] != "p" {
			t.Fatalf("round %d after revocation: %v", round, err)
		}
	}
	if n := strings.Count(logs.String(), "vault token no longer valid; logging in again"); n != 2 {
		t.Errorf("want one line per death (2), got %d:\n%s", n, logs.String())
	}
	if v.issued != 3 {
		t.Errorf("logins: %d, want 3 (start and one per revocation)", v.issued)
	}
}

func TestRealDenialIsKept(t *testing.T) {
	v := &roleVault{denyKV: true}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	c := appRoleClient(t, srv.URL, &logs)
	if _, err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadAll(context.Background(), []Ref{{Name: "app", Path: "app"}})
	if sysexits.Code(err) != sysexits.NoPerm || !strings.Contains(err.Error(), `the token's policies lack "read" on secret/data/app`) {
		t.Errorf("denial: %v (exit %d)", err, sysexits.Code(err))
	}
	if strings.Contains(logs.String(), "no longer valid") || v.issued != 1 {
		t.Errorf("a live token was taken for dead: %d logins\n%s", v.issued, logs.String())
	}
}

func TestRefusedJWTNamesTheFileAndExpiry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errors":["error validating token: token is expired (exp)"]}`)
	}))
	t.Cleanup(srv.Close)
	exp := time.Now().Add(-time.Hour).Truncate(time.Second)
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"svc","exp":%d}`, exp.Unix()))
	jwt := "eyJhbGciOiJFUzI1NiJ9." + payload + ".c2lnbmF0dXJl"
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(jwt+"\n"), 0o600)
	c, err := New(Options{Addrs: []string{srv.URL}, StartupTimeout: time.Second,
		Auth: AuthOptions{Method: "kubernetes", Mount: "kubernetes", Role: "app", JWTFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login(context.Background())
	want := "log in with kubernetes at auth/kubernetes as role app: Vault refused the JWT in AION_VAULT_JWT_FILE " + file +
		" (it expired at " + exp.UTC().Format(time.RFC3339) + "): error validating token: token is expired (exp)"
	if sysexits.Code(err) != sysexits.NoPerm || err == nil || err.Error() != want {
		t.Errorf("got %v (exit %d)\nwant %s", err, sysexits.Code(err), want)
	}
	if strings.Contains(err.Error(), payload) {
		t.Error("the error shows the JWT")
	}
}
