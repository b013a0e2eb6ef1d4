//go:build integration

package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A certificate from PKI with a short TTL is re-issued before it expires:
// certificate, key and chain are files, each rotation one SIGHUP, and
// after every one openssl verifies the certificate against the issuing
// CA and the key belongs to it.
func TestPKICertificateReissued(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	ca := v.PKI(t)
	tmpl, render := t.TempDir(), filepath.Join(t.TempDir(), "out")
	write(t, filepath.Join(tmpl, "web.pem.tmpl"), "{{ .tls.certificate }}\n")
	write(t, filepath.Join(tmpl, "web-key.pem.tmpl"), "{{ .tls.private_key }}\n")
	write(t, filepath.Join(tmpl, "chain.pem.tmpl"), "{{ .tls.issuing_ca }}\n")
	env := append(tokenEnv(v, rootToken), "AION_TLS_SECRET_PATH=pki/issue/internal?common_name=web.internal&ttl=6s",
		"AION_TEMPLATES_DIR="+tmpl, "AION_RENDER_DIR="+render, "AION_POLL_INTERVAL=1s")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	serials := []string{certSerial(t, ca, render)}
	for range 2 {
		r.stderr.waitFor(t, "certificate re-issued", 15*time.Second)
		r.stdout.waitFor(t, "sighup", 5*time.Second)
		serials = append(serials, certSerial(t, ca, render))
	}
	if serials[0] == serials[1] || serials[1] == serials[2] {
		t.Errorf("serials %v: each rotation must bring a new certificate", serials)
	}
	if n := strings.Count(r.stdout.text(), "sighup"); n != 2 {
		t.Errorf("%d SIGHUPs for two rotations", n)
	}
}

// certSerial checks the rendered certificate with openssl against the CA,
// and that the rendered key is its key; it returns its serial.
func certSerial(t *testing.T, ca, dir string) string {
	t.Helper()
	run := func(args ...string) string {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cert := filepath.Join(dir, "web.pem")
	if out := run("verify", "-CAfile", ca, "-untrusted", filepath.Join(dir, "chain.pem"), cert); !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify: %s", out)
	}
	if certKey, key := run("x509", "-in", cert, "-noout", "-pubkey"), run("pkey", "-in", filepath.Join(dir, "web-key.pem"), "-pubout"); certKey != key {
		t.Errorf("the rendered key does not belong to the rendered certificate")
	}
	return strings.TrimSpace(run("x509", "-in", cert, "-noout", "-serial"))
}

// A KV rotation reloads the child without touching the lease; Vault away
// across a renewal: the child keeps running on the valid user, the failure
// is logged once, and renewal resumes when Vault is back.
func TestLeaseIndependentOfKVAndVaultAway(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir(), withPlugins())
	v.initRaft()
	// A lease long enough that Vault, away from just after the start until
	// the first renewal fails (at about 20s), is back well before it ends
	// (30s) even on a loaded machine.
	env, pg, audit, creds := dynamicDB(t, v, 30*time.Second, time.Hour)
	v.KVPut("secret", "aionos/dev/app", map[string]any{"greeting": "hello"})
	tmpl := envValue(env, "AION_TEMPLATES_DIR")
	write(t, filepath.Join(tmpl, "app.conf.tmpl"), "greeting={{ .app.greeting }}\n")
	env = append(env, "AION_APP_SECRET_PATH=aionos/dev/app")
	r := supervise(t, env, "sh", "-c", dbLoop, "loop", creds, fmt.Sprint(pg.Port))
	user := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 30*time.Second), "user ")

	v.KVPut("secret", "aionos/dev/app", map[string]any{"greeting": "bonjour"})
	r.stdout.waitFor(t, "sighup", 10*time.Second)
	if n := auditCount(t, audit, "database/creds/app"); n != 1 {
		t.Errorf("database/creds/app read %d times by a KV rotation; want once, at start", n)
	}

	v.Stop()
	r.stderr.waitFor(t, "lease renewal failed; retrying while the secret is valid", 30*time.Second)
	v.start()
	v.unseal()
	// Back in time, the lease is renewed; if the retries ran past the
	// rotation margin (a loaded machine), a new user comes instead, still
	// before the old one ends. Either way the child never fails a login.
	eventually(t, "renewal resumed or a new secret", 30*time.Second, func() error {
		if l := r.stderr.text(); !strings.Contains(l, "lease renewal recovered") && !strings.Contains(l, "lease rotated") {
			return fmt.Errorf("neither yet")
		}
		return nil
	})
	logs := r.stderr.text()
	if n := strings.Count(logs, "lease renewal failed"); n != 1 {
		t.Errorf("want one 'lease renewal failed' line while Vault was away, got %d:\n%s", n, logs)
	}
	if out := r.stdout.text(); strings.Contains(out, "fail ") || !strings.Contains(out, "user "+user) {
		t.Errorf("the child must keep a valid user and never fail to log in:\n%s", out)
	}
}

// Leases are children of the token that got them: when aion-exec's token
// reaches its max TTL and is replaced, Vault revokes the old token's leases
// (the database user is dropped). aion-exec fetches new secrets as soon as
// it logs in again, so the child has moved to a new user before the old
// one goes: no failed login across two token lifetimes.
func TestLeasesFollowTheToken(t *testing.T) {
	t.Parallel()
	v := startVault(t, withPlugins())
	env, pg, _, creds := dynamicDB(t, v, time.Minute, time.Hour)
	roleID := enableAppRole(t, v)
	v.Write("auth/approle/role/gateway", map[string]any{"token_policies": "app", "token_ttl": "6s", "token_max_ttl": "12s"})
	env = append(withoutToken(env), "AION_VAULT_APPROLE_ROLE_ID="+roleID,
		"AION_VAULT_APPROLE_SECRET_ID="+v.Write("auth/approle/role/gateway/secret-id", nil).Data["secret_id"].(string))
	r := supervise(t, env, "sh", "-c", dbLoop, "loop", creds, fmt.Sprint(pg.Port))
	first := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 30*time.Second), "user ")
	for range 2 {
		r.stderr.waitFor(t, "vault login renewed", 20*time.Second)
		r.stdout.waitFor(t, "sighup", 10*time.Second) // a new user, not a dropped one
	}
	eventually(t, "the first user dropped with the first token", 20*time.Second, func() error {
		if roleExists(t, pg, first) {
			return fmt.Errorf("%s still exists", first)
		}
		return nil
	})
	if out := r.stdout.text(); strings.Contains(out, "fail ") {
		t.Errorf("a login failed across the token's replacement:\n%s", out)
	}
}
