//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

var dbSecret = map[string]any{
	"username": "aionos", "password": "s3cr3t-P@ss:/%#?&'\" w", "host": "127.0.0.1", "port": 5432, "database": "aionos",
}

// seeded starts a Vault with the platform's layout: KV v2 at secret/, KV v1
// at kv/, a read-only policy on the service's paths.
func seeded(t *testing.T, opts ...vaultOption) *Vault {
	t.Helper()
	v := startVault(t, opts...)
	v.KVPut("secret", "aionos/dev/db-main", dbSecret)
	v.KVPut("secret", "aionos/dev/admin-token", map[string]any{"token": "adm-9f8e7d6c5b4a"})
	if err := v.Root.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	v.Write("kv/aionos/minio", map[string]any{"endpoint": "127.0.0.1:9000", "access_key": "minio-ak", "secret_key": "minio-sk-123", "bucket": "aionos", "secure": "false"})
	v.Policy("svc", `
path "secret/data/aionos/*" { capabilities = ["read"] }
path "kv/aionos/*" { capabilities = ["read"] }
`)
	return v
}

// tokenEnv is v's address and CA with a token.
func tokenEnv(v *Vault, token string) []string {
	return append(v.addrEnv(), "AION_VAULT_TOKEN="+token)
}

// assertNoSecrets fails when any secret value of the suite shows up in s.
func assertNoSecrets(t *testing.T, s string, extra ...string) {
	t.Helper()
	for _, v := range append([]string{"s3cr3t-P@ss", "adm-9f8e7d6c5b4a", "minio-sk-123", rootToken}, extra...) {
		if strings.Contains(s, v) {
			t.Errorf("output leaks secret value %q:\n%s", v, s)
		}
	}
}

func TestCheckTokenAuthEveryPathForm(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	tok := v.Token([]string{"svc"}, "1h", true)
	env := append(tokenEnv(v, tok),
		"AION_ENV=dev",
		"AION_DB_SECRET_PATH=aionos/${AION_ENV}/db-main",                  // relative to the KV mount
		"AION_ADMIN_TOKEN_SECRET_PATH=secret/data/aionos/dev/admin-token", // absolute with data/
		"AION_MINIO_SECRET_PATH=kv/aionos/minio",                          // a KV v1 mount
		"AION_OTHER_SECRET_PATH=secret/aionos/dev/db-main",                // absolute without data/
	)
	r := aion(t, env, "check")
	if r.Code != 0 {
		t.Fatalf("check exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"auth     token OK",
		"policies [default,svc]",
		"db                 aionos/dev/db-main -> secret/data/aionos/dev/db-main (mount secret, kv-v2 version 1) keys [database,host,password,port,username] OK",
		"admin_token        secret/data/aionos/dev/admin-token -> secret/data/aionos/dev/admin-token (mount secret, kv-v2 version 1) keys [token] OK",
		"minio              kv/aionos/minio -> kv/aionos/minio (mount kv, kv-v1) keys [access_key,bucket,endpoint,secret_key,secure] OK",
		"other              secret/aionos/dev/db-main -> secret/data/aionos/dev/db-main",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.Stdout)
		}
	}
	assertNoSecrets(t, r.Stdout+r.Stderr, tok)
}

// TestTokenFile is also the one test of a Vault on plain HTTP: every other
// one speaks TLS.
func TestTokenFile(t *testing.T) {
	t.Parallel()
	v := seeded(t, plainHTTP())
	if !strings.HasPrefix(v.Addr, "http://") || v.CACert != "" {
		t.Fatalf("plainHTTP(): Vault at %s with CA %q", v.Addr, v.CACert)
	}
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(v.Token([]string{"svc"}, "1h", true)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := aion(t, append(v.addrEnv(), "AION_VAULT_TOKEN_FILE="+f, "AION_DB_SECRET_PATH=aionos/dev/db-main"), "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "auth     token OK") {
		t.Fatalf("check with token file: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

func enableAppRole(t *testing.T, v *Vault) (roleID string) {
	t.Helper()
	if err := v.Root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	v.Write("auth/approle/role/gateway", map[string]any{"token_policies": "svc", "token_ttl": "1h", "token_max_ttl": "4h"})
	s, err := v.Root.Logical().Read("auth/approle/role/gateway/role-id")
	if err != nil {
		t.Fatal(err)
	}
	return s.Data["role_id"].(string)
}

func TestAppRolePlainAndWrapped(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	roleID := enableAppRole(t, v)
	base := append(v.addrEnv(), "AION_VAULT_APPROLE_ROLE_ID="+roleID, "AION_DB_SECRET_PATH=aionos/dev/db-main")

	plain := v.Write("auth/approle/role/gateway/secret-id", nil).Data["secret_id"].(string)
	r := aion(t, append(base, "AION_VAULT_APPROLE_SECRET_ID="+plain), "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "auth     approle at auth/approle OK") {
		t.Fatalf("approle plain: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertNoSecrets(t, r.Stdout+r.Stderr, plain)

	wc := cloneWithWrap(t, v, "5m")
	ws, err := wc.Logical().Write("auth/approle/role/gateway/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := ws.WrapInfo.Token
	f := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(f, []byte(wrapped), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(base, "AION_VAULT_APPROLE_SECRET_ID_FILE="+f)
	r = aion(t, env, "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "auth     approle at auth/approle OK") {
		t.Fatalf("approle wrapped: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	// A wrapping token is single use: the second start must say so.
	r = aion(t, env, "check")
	if r.Code != 77 || !strings.Contains(r.Stderr, "the wrapping token was already used or has expired") {
		t.Fatalf("second use of a wrapped secret ID: exit %d, want 77 and a clear line\n%s", r.Code, r.Stderr)
	}
	assertNoSecrets(t, r.Stdout+r.Stderr, wrapped)
}

func cloneWithWrap(t *testing.T, v *Vault, ttl string) *api.Client {
	t.Helper()
	c, err := v.Root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(rootToken)
	c.SetWrappingLookupFunc(func(string, string) string { return ttl })
	return c
}

func TestWrappedTokenOfOtherPathRefused(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	roleID := enableAppRole(t, v)
	// A wrapped child token, not a secret ID: unwrapping it would hand
	// aion-exec (and whoever planted it) a token it was never meant to have.
	ws, err := cloneWithWrap(t, v, "5m").Logical().Write("auth/token/create", map[string]any{"policies": []string{"svc"}})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := ws.WrapInfo.Token
	r := aion(t, append(v.addrEnv(), "AION_VAULT_APPROLE_ROLE_ID="+roleID,
		"AION_VAULT_APPROLE_SECRET_ID="+wrapped, "AION_DB_SECRET_PATH=aionos/dev/db-main"), "check")
	if r.Code != 77 || !strings.Contains(r.Stderr, `created by "auth/token/create", not by an AppRole secret-id endpoint`) {
		t.Fatalf("wrong creation path: exit %d\n%s", r.Code, r.Stderr)
	}
	// It was not consumed.
	if _, err := v.Root.Logical().Write("sys/wrapping/lookup", map[string]any{"token": wrapped}); err != nil {
		t.Errorf("the refused wrapping token was consumed: %v", err)
	}
}

func TestDeletedLatestVersion(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"password": "second"})
	if err := v.Root.KVv2("secret").Delete(t.Context(), "aionos/dev/db-main"); err != nil {
		t.Fatal(err)
	}
	r := aion(t, append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main"), "once")
	if r.Code != 65 || !strings.Contains(r.Stderr, "read secret db at secret/data/aionos/dev/db-main: version 2 was deleted at") {
		t.Fatalf("deleted latest version: exit %d\n%s", r.Code, r.Stderr)
	}
	if err := v.Root.KVv2("secret").Destroy(t.Context(), "aionos/dev/db-main", []int{2}); err != nil {
		t.Fatal(err)
	}
	r = aion(t, append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main"), "once")
	if r.Code != 65 || !strings.Contains(r.Stderr, "version 2 is destroyed") {
		t.Fatalf("destroyed latest version: exit %d\n%s", r.Code, r.Stderr)
	}
}

func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	v.KVPut("secret", "other-team/db", map[string]any{"password": "theirs"})
	tok := v.Token([]string{"svc"}, "1h", true)
	r := aion(t, append(tokenEnv(v, tok), "AION_DB_SECRET_PATH=secret/other-team/db"), "once")
	if r.Code != 77 || !strings.Contains(r.Stderr, `read secret db at secret/data/other-team/db: permission denied: the token's policies lack "read" on secret/data/other-team/db`) {
		t.Fatalf("permission denied: exit %d\n%s", r.Code, r.Stderr)
	}
	if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n > 0 {
		t.Errorf("want one line on stderr, got %d:\n%s", n+1, r.Stderr)
	}
	r = aion(t, append(tokenEnv(v, "hvs.not-a-token"), "AION_DB_SECRET_PATH=aionos/dev/db-main"), "once")
	if r.Code != 77 || !strings.Contains(r.Stderr, "the token is invalid, expired or revoked") {
		t.Fatalf("bad token: exit %d\n%s", r.Code, r.Stderr)
	}
}

func TestVaultUnreachable(t *testing.T) {
	t.Parallel()
	addr := "https://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	r := aion(t, []string{"AION_VAULT_ADDR=" + addr, "AION_VAULT_TOKEN=x", "AION_STARTUP_TIMEOUT=2s", "AION_DB_SECRET_PATH=a/b"}, "once")
	if r.Code != 69 || !strings.Contains(r.Stderr, "gave up after AION_STARTUP_TIMEOUT=2s") {
		t.Fatalf("unreachable: exit %d\n%s", r.Code, r.Stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("gave up after %s; the timeout was 2s", took)
	}
	// One log line per change of state, not one per attempt.
	if n := strings.Count(r.Stderr, "waiting for vault"); n != 1 {
		t.Errorf("want one 'waiting for vault' line, got %d:\n%s", n, r.Stderr)
	}
}

func TestBadConfigNamesEveryVariable(t *testing.T) {
	t.Parallel()
	r := aion(t, []string{"AION_VAULT_AUTH_METHOD=kerberos", "AION_POLL_INTERVAL=soon", "AION_DB_SECRET_PATH=aionos/${AION_ENV}/db"}, "check")
	if r.Code != 64 {
		t.Fatalf("bad config: exit %d, want 64\n%s", r.Code, r.Stderr)
	}
	for _, want := range []string{"AION_VAULT_ADDR is not set", "AION_VAULT_AUTH_METHOD is \"kerberos\"", "AION_POLL_INTERVAL is \"soon\"", "AION_DB_SECRET_PATH uses ${AION_ENV} but AION_ENV is not set"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
}

// SIGTERM while waiting for Vault ends aion-exec at once, before any child.
func TestSIGTERMWhileWaitingForVault(t *testing.T) {
	t.Parallel()
	addr := "https://127.0.0.1:" + strconv.Itoa(freePort(t))
	r := supervise(t, []string{"AION_VAULT_ADDR=" + addr, "AION_VAULT_TOKEN=x", "AION_STARTUP_TIMEOUT=5m", "AION_DB_SECRET_PATH=a/b"}, "sh", "-c", "echo child-started")
	r.stderr.waitFor(t, "waiting for vault", 10*time.Second)
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(t); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
	if !strings.Contains(r.stderr.text(), "stopped before the child started") || strings.Contains(r.stdout.text(), "child-started") {
		t.Errorf("stderr:\n%s\nstdout:\n%s", r.stderr.text(), r.stdout.text())
	}
}
