//go:build integration

package integration

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestShortTTLTokenIsRenewed(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	tok := v.Token([]string{"svc"}, "3s", true)
	env, _ := watchEnv(t, v)
	env = append(env, "AION_VAULT_TOKEN="+tok, "AION_POLL_INTERVAL=500ms")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	r.stderr.waitFor(t, "vault token renewed", 10*time.Second)
	r.stderr.waitFor(t, "vault token renewed", 10*time.Second)
	// Past the first TTL, reads still succeed on the renewed token.
	r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 5*time.Second)
	if strings.Contains(r.stderr.text(), "ok=false") {
		t.Errorf("a read failed while the token was renewed:\n%s", r.stderr.text())
	}
	assertNoSecrets(t, r.stderr.text(), tok)
}

func TestAppRoleLogsInAgainAfterMaxTTL(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := appRoleEnv(t, v, map[string]any{"token_ttl": "2s", "token_max_ttl": "4s"})
	secretID := v.Write("auth/approle/role/gateway/secret-id", nil).Data["secret_id"].(string)
	env = append(env, "AION_VAULT_APPROLE_SECRET_ID="+secretID, "AION_POLL_INTERVAL=500ms")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	r.stderr.waitFor(t, "vault login renewed", 15*time.Second)
	r.stderr.waitFor(t, "vault login renewed", 15*time.Second)
	// Reads go on with the new token, and the child never noticed.
	r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 5*time.Second)
	if strings.Contains(r.stdout.text(), "sighup") || strings.Count(r.stdout.text(), "ready") != 1 {
		t.Errorf("the child was disturbed by a re-login:\n%s", r.stdout.text())
	}
	assertNoSecrets(t, r.stderr.text(), secretID)
}

// A wrapped secret ID is single use: re-logins after the max TTL use what it
// unwrapped to, and a new wrapped secret ID written to the file is picked up.
func TestWrappedSecretIDFileReloginAndRotation(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := appRoleEnv(t, v, map[string]any{"token_ttl": "2s", "token_max_ttl": "3s"})
	wrap := func() string {
		ws, err := cloneWithWrap(t, v, "5m").Logical().Write("auth/approle/role/gateway/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws.WrapInfo.Token
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "secret-id")
	write(t, file, wrap())
	env = append(env, "AION_VAULT_APPROLE_SECRET_ID_FILE="+file, "AION_POLL_INTERVAL=500ms")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	r.stderr.waitFor(t, "vault login renewed", 15*time.Second)

	// Kubernetes-style delivery: write elsewhere, rename into place.
	fresh := wrap()
	write(t, file+".new", fresh)
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	r.stderr.waitFor(t, "credential file changed; logging in again", 10*time.Second)
	r.stderr.waitFor(t, "vault login renewed", 10*time.Second)
	// The new wrapping token was consumed by that login.
	if _, err := v.Root.Logical().Write("sys/wrapping/lookup", map[string]any{"token": fresh}); err == nil {
		t.Error("the new wrapped secret ID was not used")
	}
	if strings.Contains(r.stderr.text(), "vault login failed") {
		t.Errorf("a re-login failed:\n%s", r.stderr.text())
	}
	assertNoSecrets(t, r.stderr.text(), fresh)
}

// A token that cannot be renewed (an AppRole batch token) is replaced by a
// fresh login before it expires, and reads never fail.
func TestNonRenewableTokenReplacedBeforeExpiry(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := appRoleEnv(t, v, map[string]any{"token_type": "batch", "token_ttl": "3s"})
	secretID := v.Write("auth/approle/role/gateway/secret-id", nil).Data["secret_id"].(string)
	env = append(env, "AION_VAULT_APPROLE_SECRET_ID="+secretID, "AION_POLL_INTERVAL=300ms")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	for range 2 {
		r.stderr.waitFor(t, "vault token is about to expire", 10*time.Second)
		r.stderr.waitFor(t, "vault login renewed", 10*time.Second)
	}
	r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 5*time.Second)
	if strings.Contains(r.stderr.text(), "ok=false") {
		t.Errorf("a read failed around a token replacement:\n%s", r.stderr.text())
	}
}

// appRoleEnv enables AppRole with the role gateway held to settings (its
// token policy is svc), and returns watchEnv's environment with the role's
// ID in place of the root token. The caller adds the secret ID.
func appRoleEnv(t *testing.T, v *Vault, settings map[string]any) []string {
	t.Helper()
	roleID := enableAppRole(t, v)
	role := map[string]any{"token_policies": "svc"}
	maps.Copy(role, settings)
	v.Write("auth/approle/role/gateway", role)
	env, _ := watchEnv(t, v)
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "AION_VAULT_TOKEN=") })
	return append(env, "AION_VAULT_APPROLE_ROLE_ID="+roleID)
}
