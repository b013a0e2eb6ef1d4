//go:build integration

package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// certChild is a child that shows the certificate in file $1 as a
// service would load it, at start and at each SIGHUP: "ready serial=S
// notAfter=T", "sighup serial=S notAfter=T".
const certChild = `show() { echo "$1 $(openssl x509 -in "$2" -noout -serial -enddate | tr '\n' ' ')"; }
trap 'show sighup "$1"' HUP
show ready "$1"
while :; do sleep 0.1; done`

var certSeenRE = regexp.MustCompile(`serial=(\S+) notAfter=(.+ GMT)`)

// certSeen is a certificate the child loaded: its serial and its end.
func certSeen(t *testing.T, line string) (serial string, notAfter time.Time) {
	t.Helper()
	m := certSeenRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no certificate in the child's line %q", line)
	}
	notAfter, err := time.Parse("Jan _2 15:04:05 2006 GMT", m[2])
	if err != nil {
		t.Fatalf("the child's line %q: %v", line, err)
	}
	return m[1], notAfter
}

// A certificate from PKI with a short TTL is re-issued before it expires:
// certificate, key and chain are files, each rotation one SIGHUP, which
// the child gets before the certificate it had ends; after every one
// openssl verifies the certificate against the issuing CA and the key
// belongs to it.
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
	r := supervise(t, env, "sh", "-c", certChild, "cert", filepath.Join(render, "web.pem"))
	serial, notAfter := certSeen(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	verifyCert(t, ca, render)
	for i := range 2 {
		line := r.stdout.waitFor(t, "sighup", 15*time.Second)
		// The new certificate was written before the SIGHUP was sent,
		// so it arrived no later than now.
		arrived := time.Now()
		r.stderr.waitFor(t, "certificate re-issued", 5*time.Second)
		next, nextNotAfter := certSeen(t, line)
		if !arrived.Before(notAfter) {
			t.Errorf("re-issue %d reached the child at %s, not before the end of its certificate (%s)",
				i+1, arrived.UTC().Format(time.RFC3339Nano), notAfter.UTC().Format(time.RFC3339))
		}
		if next == serial {
			t.Errorf("re-issue %d: the child loaded the same certificate (serial %s)", i+1, serial)
		}
		verifyCert(t, ca, render)
		serial, notAfter = next, nextNotAfter
	}
	if n := strings.Count(r.stdout.text(), "sighup"); n != 2 {
		t.Errorf("%d SIGHUPs for two rotations", n)
	}
}

// verifyCert checks the rendered certificate with openssl against the
// CA, and that the rendered key is its key.
func verifyCert(t *testing.T, ca, dir string) {
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
}

// A KV rotation reloads the child and makes no lease request: no renewal,
// no new database user (Vault's audit log). Then Vault is away across the
// lease's renewal deadline: the child keeps running on its valid user, the
// failure is logged once, and once Vault is back, well before the lease's
// rotation point, the same lease is renewed in Vault: no new user, no
// signal to the child.
func TestLeaseIndependentOfKVAndVaultAway(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir(), withPlugins())
	v.initRaft()
	// Renewal at two thirds of the lease less a splay of up to a tenth
	// (34-40s); a renewal that still fails is given up for a new user a
	// tenth before the end, less the same splay (48s at the earliest).
	// Vault, stopped before the renewal and started again as soon as it
	// fails, has at least 8s to come back.
	const ttl = time.Minute
	env, pg, audit, creds := dynamicDB(t, v, ttl, time.Hour)
	v.KVPut("secret", "aionos/dev/app", map[string]any{"greeting": "hello"})
	tmpl := envValue(env, "AION_TEMPLATES_DIR")
	write(t, filepath.Join(tmpl, "app.conf.tmpl"), "greeting={{ .app.greeting }}\n")
	env = append(env, "AION_APP_SECRET_PATH=aionos/dev/app")
	r := supervise(t, env, "sh", "-c", dbLoop, "loop", creds, fmt.Sprint(pg.Port))
	user := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 30*time.Second), "user ")

	v.KVPut("secret", "aionos/dev/app", map[string]any{"greeting": "bonjour"})
	before := len(auditRequests(t, audit)) // from just after the change
	r.stdout.waitFor(t, "sighup", 10*time.Second)
	assertKVOnly(t, auditRequests(t, audit)[before:])

	lease, issued, expires := appLease(t, v)
	v.Stop()
	r.stderr.waitFor(t, "lease renewal failed; retrying while the secret is valid", ttl)
	v.start()
	v.unseal()
	if back, rotation := time.Since(issued), ttl*8/10-time.Second; back > rotation {
		t.Fatalf("Vault was back %s after the lease was issued, past its earliest rotation point (%s): the machine is too loaded for this test", back, rotation)
	}
	r.stderr.waitFor(t, "lease renewal recovered", 30*time.Second)
	if renewed, _, until := appLease(t, v); renewed != lease || !until.After(expires) {
		t.Errorf("after the outage Vault holds lease %s until %s; want %s renewed past %s", renewed, until, lease, expires)
	}
	logs := r.stderr.text()
	if n := strings.Count(logs, "lease renewal failed"); n != 1 || strings.Contains(logs, "lease rotated") {
		t.Errorf("want one 'lease renewal failed' line while Vault was away and no rotation, got %d:\n%s", n, logs)
	}
	if n := auditCount(t, audit, "database/creds/app"); n != 1 {
		t.Errorf("database/creds/app read %d times; want once, at start", n)
	}
	if out := r.stdout.text(); strings.Contains(out, "fail ") || strings.Count(out, "user ") != 1 || strings.Count(out, "sighup") != 1 {
		t.Errorf("the child must keep %s, never fail to log in, and get one SIGHUP (the KV change):\n%s", user, out)
	}
}

// assertKVOnly checks that requests (those of a KV rotation) read KV and
// nothing leased: no renewal, no new database user.
func assertKVOnly(t *testing.T, requests []auditRequest) {
	t.Helper()
	kv := 0
	for _, r := range requests {
		switch {
		case r.Path == "secret/data/aionos/dev/app":
			kv++
		case strings.HasPrefix(r.Path, "sys/leases/"), strings.HasPrefix(r.Path, "database/"):
			t.Errorf("a KV rotation requested %s", r.Path)
		}
	}
	if kv == 0 {
		t.Errorf("no read of the changed KV secret among the %d requests of its rotation", len(requests))
	}
}

// appLease looks up, as root, the one lease of database/creds/app: its ID,
// when Vault issued it and when it expires.
func appLease(t *testing.T, v *Vault) (id string, issued, expires time.Time) {
	t.Helper()
	list, err := v.Root.Logical().List("sys/leases/lookup/database/creds/app/")
	if err != nil || list == nil {
		t.Fatalf("list the leases of database/creds/app: %v", err)
	}
	keys, _ := list.Data["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("leases of database/creds/app: %v, want one", keys)
	}
	id = fmt.Sprint("database/creds/app/", keys[0])
	l := v.Write("sys/leases/lookup", map[string]any{"lease_id": id})
	for field, at := range map[string]*time.Time{"issue_time": &issued, "expire_time": &expires} {
		s, _ := l.Data[field].(string)
		if *at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			t.Fatalf("lease %s: %s %q: %v", id, field, s, err)
		}
	}
	return id, issued, expires
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
