//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// leasePolicy is what a service with dynamic credentials needs: its
// KV secret, its database role, and its own leases.
const leasePolicy = `
path "secret/data/aionos/*" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
path "pki/issue/internal" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`

// dbLoop is a child that makes a fresh PostgreSQL connection every 100ms
// with the user and password of the file $1 (read each time) and prints
// "user U" whenever the user that got in changes, "fail ..." for every
// connection refused, and "sighup" for each SIGHUP.
const dbLoop = `trap 'echo sighup' HUP
last=
while :; do
  . "$1"
  if out=$(psql -h 127.0.0.1 -p "$2" -d postgres -XtAc 'select current_user' 2>&1); then
    [ "$out" != "$last" ] && echo "user $out" && last=$out
  else
    echo "fail $out"
  fi
  sleep 0.1
done`

// dynamicDB is a Vault with the database plugin, a role app whose users
// live ttl (renewable to maxTTL) on a real PostgreSQL, the connection in a
// KV secret, an audit log, and the environment of a service whose db
// secret merges the two: aionos/dev/db-main (host, port, database) and
// database/creds/app (username, password).
func dynamicDB(t *testing.T, v *Vault, ttl, maxTTL time.Duration) (env []string, pg *Postgres, audit, creds string) {
	t.Helper()
	pg = startPostgres(t)
	v.DatabaseRole(t, pg, "app", ttl, maxTTL)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"host": "127.0.0.1", "port": pg.Port, "database": "postgres"})
	audit = filepath.Join(t.TempDir(), "audit.log")
	if err := v.Root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": audit}}); err != nil {
		t.Fatal(err)
	}
	v.Policy("app", leasePolicy)
	tmpl, render := t.TempDir(), filepath.Join(t.TempDir(), "out")
	write(t, filepath.Join(tmpl, "pg.sh.tmpl"), "PGUSER={{ shellQuote .db.username }}\nPGPASSWORD={{ shellQuote .db.password }}\nexport PGUSER PGPASSWORD\n")
	env = append(tokenEnv(v, v.Token([]string{"app"}, "1h", true)),
		"AION_DB_SECRET_PATH=aionos/dev/db-main,database/creds/app", "AION_TEMPLATES_DIR="+tmpl, "AION_RENDER_DIR="+render,
		"AION_POLL_INTERVAL=1s")
	return env, pg, audit, filepath.Join(render, "pg.sh")
}

func roleExists(t *testing.T, pg *Postgres, user string) bool {
	t.Helper()
	return strings.TrimSpace(pg.psql(fmt.Sprintf("select count(*) from pg_roles where rolname = %s", sqlString(user)))) == "1"
}

// Dynamic credentials under a running child: the lease is renewed, not
// read again, until its max TTL; then a new user arrives before the old
// one ends, with one SIGHUP; Vault drops the old user after its lease; a
// connection loop through two rotations never fails to log in. No lease
// event reads KV (Vault's audit log): KV is read at start and by polls,
// which are an hour apart here, so that any other read would show. The
// built-in db template puts the user in PGUSER, PGPASSWORD and
// DATABASE_URL, which a reload cannot change: aion-exec says so at start.
func TestDynamicDatabaseCredentials(t *testing.T) {
	t.Parallel()
	v := startVault(t, withPlugins())
	env, pg, audit, creds := dynamicDB(t, v, 5*time.Second, 12*time.Second)
	env = replaceEnv(env, "AION_POLL_INTERVAL", "1h")
	r := supervise(t, env, "sh", "-c", dbLoop, "loop", creds, fmt.Sprint(pg.Port))
	first := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 30*time.Second), "user ")
	if renewed := r.stderr.waitFor(t, "lease renewed", 10*time.Second); !strings.Contains(renewed, "secret=db") {
		t.Errorf("renewal line: %s", renewed)
	}
	r.stderr.waitFor(t, "lease rotated", 20*time.Second)
	r.stdout.waitFor(t, "sighup", 5*time.Second)
	second := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 5*time.Second), "user ")
	if second == first {
		t.Fatalf("same user after the rotation: %s", second)
	}
	if reads, renewals := auditCount(t, audit, "database/creds/app"), auditCount(t, audit, "sys/leases/renew"); reads != 2 || renewals < 2 {
		t.Errorf("before the first rotation: %d reads of database/creds/app (want 2: start, rotation), %d renewals (want 2 or more)", reads, renewals)
	}
	eventually(t, "the old user dropped by Vault after its lease", 15*time.Second, func() error {
		if roleExists(t, pg, first) {
			return fmt.Errorf("%s still exists", first)
		}
		return nil
	})
	r.stderr.waitFor(t, "lease rotated", 20*time.Second)
	r.stdout.waitFor(t, "sighup", 5*time.Second)
	r.stdout.waitFor(t, "user ", 5*time.Second)
	if out := r.stdout.text(); strings.Count(out, "sighup") != 2 || strings.Contains(out, "fail ") {
		t.Errorf("want two SIGHUPs, no failed login:\n%s", out)
	}
	password := credValue(t, creds, "PGPASSWORD")
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.wait(t)
	logs := r.stderr.text()
	// Counted once aion-exec has ended: no request or poll is in flight.
	if kv, polls := auditCount(t, audit, "secret/data/aionos/dev/db-main"), strings.Count(logs, "msg=polled"); kv != 1+polls {
		t.Errorf("KV read %d times: want once at start and once per poll (%d): a lease event must not read KV", kv, polls)
	}
	if n := strings.Count(logs, "leased secrets reach environment variables"); n != 1 ||
		!strings.Contains(logs, `leased_env="db [DATABASE_URL PGPASSWORD PGUSER]"`) {
		t.Errorf("want one warning that db's user reaches DATABASE_URL, PGPASSWORD and PGUSER, got %d:\n%s", n, logs)
	}
	assertNoSecrets(t, logs, password)
	t.Logf("aion-exec's log:\n%s", logs)
}

// credValue is the value of name in the rendered credentials file creds.
func credValue(t *testing.T, creds, name string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, creds), "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("no %s in %s", name, creds)
	return ""
}

// dbOnce is a child that logs in once with the user and password of the
// file $1, prints "user U", and exits.
const dbOnce = `. "$1" && u=$(psql -h 127.0.0.1 -p "$2" -d postgres -XtAc 'select current_user') && echo "user $u"`

// When the supervised run ends, on SIGTERM or SIGINT or because the child
// exited, aion-exec revokes its lease: the database user is gone at once.
// With AION_REVOKE_ON_EXIT=false it stays; so it does after once and env,
// whose outputs outlive them: their user still logs in.
func TestLeaseRevokedOnExit(t *testing.T) {
	t.Parallel()
	v := startVault(t, withPlugins())
	env, pg, _, creds := dynamicDB(t, v, time.Minute, time.Hour)
	port := fmt.Sprint(pg.Port)
	seen := map[string]bool{} // every user so far: each run must make its own
	for _, tc := range []struct {
		name string
		env  string    // added to env
		stop os.Signal // sent to aion-exec; nil: the child exits on its own
		kept bool
	}{
		{"SIGTERM", "", syscall.SIGTERM, false},
		{"SIGINT", "", os.Interrupt, false},
		{"child exits", "", nil, false},
		{"AION_REVOKE_ON_EXIT=false", "AION_REVOKE_ON_EXIT=false", syscall.SIGTERM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, child := env, []string{"sh", "-c", dbLoop, "loop", creds, port}
			if tc.env != "" {
				e = slices.Concat(env, []string{tc.env})
			}
			if tc.stop == nil {
				child = []string{"sh", "-c", dbOnce, "once", creds, port}
			}
			r := supervise(t, e, child...)
			user := strings.TrimPrefix(r.stdout.waitFor(t, "user ", 30*time.Second), "user ")
			seen[user] = true
			if tc.stop != nil {
				r.cmd.Process.Signal(tc.stop)
			}
			code := r.wait(t)
			if exists := roleExists(t, pg, user); exists != tc.kept {
				t.Errorf("user %s exists %t after aion-exec ended (code %d), want %t\n%s", user, exists, code, tc.kept, r.stderr.text())
			}
			if revoked := strings.Contains(r.stderr.text(), "lease revoked"); revoked == tc.kept {
				t.Errorf("'lease revoked' logged %t, want %t:\n%s", revoked, !tc.kept, r.stderr.text())
			}
			if tc.stop == nil && code != 0 {
				t.Errorf("exit code %d after the child exited 0", code)
			}
		})
	}
	for _, cmd := range []string{"once", "env"} {
		t.Run(cmd, func(t *testing.T) {
			r := aion(t, env, cmd)
			if r.Code != 0 {
				t.Fatalf("aion-exec %s: exit %d\n%s", cmd, r.Code, r.Stderr)
			}
			user, password := credValue(t, creds, "PGUSER"), credValue(t, creds, "PGPASSWORD")
			if seen[user] {
				t.Fatalf("aion-exec %s left the credentials of an earlier run (%s), not its own", cmd, user)
			}
			seen[user] = true
			if cmd == "env" && !strings.Contains(r.Stdout, "export PGUSER='"+user+"'") {
				t.Errorf("env printed no export of PGUSER %s, the user it wrote", user)
			}
			if got, err := pg.psqlAs(user, password, "select current_user"); err != nil || got != user {
				t.Errorf("log in as %s after aion-exec %s ended: %q, %v", user, cmd, got, err)
			}
		})
	}
}

// check shows a leased secret's lease, and a certificate's subject, names
// and validity, never a value, and leaves no database user behind.
func TestCheckLeasedSecrets(t *testing.T) {
	t.Parallel()
	v := startVault(t, withPlugins())
	env, pg, _, _ := dynamicDB(t, v, time.Minute, time.Hour)
	v.PKI(t)
	const tls = "pki/issue/internal?common_name=web.internal&alt_names=api.internal&ip_sans=127.0.0.1&ttl=5m"
	r := aion(t, append(env, "AION_TLS_SECRET_PATH="+tls), "check")
	for _, want := range []string{
		"database/creds/app -> database/creds/app (mount database, database, lease 1m0s, renewable true, revoked again) keys [password,username] OK",
		"aionos/dev/db-main -> secret/data/aionos/dev/db-main (mount secret, kv-v2 version 1)",
		tls + ` -> pki/issue/internal (mount pki, pki, certificate subject "CN=web.internal", SANs [DNS:api.internal DNS:web.internal IP:127.0.0.1], valid `,
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("check lacks %q:\n%s\n%s", want, r.Stdout, r.Stderr)
		}
	}
	if n := strings.TrimSpace(pg.psql("select count(*) from pg_roles where rolname like 'v-%'")); n != "0" {
		t.Errorf("check left %s database users behind", n)
	}
}
