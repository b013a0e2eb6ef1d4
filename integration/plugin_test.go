//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const postgresPlugin = "postgresql-database-plugin"

// defaultCreation is the role's creation statement when a test gives none:
// a login role that may connect to the postgres database until its lease
// ends.
const defaultCreation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT CONNECT ON DATABASE postgres TO "{{name}}";`

// DatabaseRole sets up dynamic PostgreSQL credentials at
// database/creds/<role>: it enables database/ (Vault's own PostgreSQL
// plugin, from withPlugins()), connects database/config/<role> to pg as an
// admin role it creates there, and writes database/roles/<role> with
// creation (defaultCreation when empty) and the TTLs.
func (v *Vault) DatabaseRole(t testing.TB, pg *Postgres, role string, defaultTTL, maxTTL time.Duration, creation ...string) {
	t.Helper()
	v.registerPostgresPlugin(t)
	mounts, err := v.Root.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mounts["database/"]; !ok {
		if err := v.Root.Sys().Mount("database", &api.MountInput{Type: "database"}); err != nil {
			t.Fatalf("enable database/: %v", err)
		}
	}
	user, password := pg.vaultAdmin()
	v.Write("database/config/"+role, map[string]any{
		"plugin_name":    postgresPlugin,
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable", pg.Port),
		"username":       user,
		"password":       password,
		"allowed_roles":  role,
	})
	if len(creation) == 0 {
		creation = []string{defaultCreation}
	}
	v.Write("database/roles/"+role, map[string]any{
		"db_name":             role,
		"creation_statements": creation,
		"default_ttl":         int(defaultTTL.Seconds()),
		"max_ttl":             int(maxTTL.Seconds()),
	})
}

// registerPostgresPlugin puts the plugin in Vault's catalog unless it is
// there: a dev server with -dev-plugin-dir registers what it finds, a
// server with plugin_directory needs the command and its sha256.
func (v *Vault) registerPostgresPlugin(t testing.TB) {
	t.Helper()
	if _, err := v.Root.Sys().GetPluginWithContext(t.Context(), &api.GetPluginInput{Name: postgresPlugin, Type: api.PluginTypeDatabase}); err == nil {
		return
	}
	f, err := os.Open(filepath.Join(pluginDir(), postgresPlugin))
	if err != nil {
		t.Fatalf("the database plugin (build-vault.sh builds it): %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if err := v.Root.Sys().RegisterPluginWithContext(t.Context(), &api.RegisterPluginInput{
		Name: postgresPlugin, Type: api.PluginTypeDatabase, Command: postgresPlugin, SHA256: hex.EncodeToString(h.Sum(nil)),
	}); err != nil {
		t.Fatalf("register %s: %v", postgresPlugin, err)
	}
}

// TestDatabasePluginHarness proves DatabaseRole on a dev server (which
// registers the plugin itself) and on a Raft server (where the harness
// registers it): database/creds/app is a user that logs in to PostgreSQL,
// and revoking its lease drops the role.
func TestDatabasePluginHarness(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *Vault
	}{
		{"dev", func(t *testing.T) *Vault {
			v := startVault(t, withPlugins())
			if _, err := v.Root.Sys().GetPluginWithContext(t.Context(), &api.GetPluginInput{Name: postgresPlugin, Type: api.PluginTypeDatabase}); err != nil {
				t.Errorf("-dev-plugin-dir did not register %s: %v", postgresPlugin, err)
			}
			return v
		}},
		{"raft", func(t *testing.T) *Vault {
			v := startVaultConfig(t, t.TempDir(), withPlugins())
			v.initRaft()
			return v
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, pg := tc.start(t), startPostgres(t)
			v.DatabaseRole(t, pg, "app", time.Minute, 5*time.Minute)
			s, err := v.Root.Logical().Read("database/creds/app")
			if err != nil {
				t.Fatalf("read database/creds/app: %v", err)
			}
			user, password := s.Data["username"].(string), s.Data["password"].(string)
			if s.LeaseDuration != 60 || !s.Renewable {
				t.Errorf("lease %ds renewable %t, want 60s and renewable", s.LeaseDuration, s.Renewable)
			}
			if got, err := pg.psqlAs(user, password, "select current_user"); err != nil || got != user {
				t.Fatalf("log in as %s: %q, %v", user, got, err)
			}
			if err := v.Root.Sys().Revoke(s.LeaseID); err != nil {
				t.Fatalf("revoke %s: %v", s.LeaseID, err)
			}
			if n := pg.psql("select count(*) from pg_roles where rolname = " + sqlString(user)); n != "0" {
				t.Errorf("role %s still exists after its lease was revoked", user)
			}
			if _, err := pg.psqlAs(user, password, "select 1"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
				t.Errorf("log in after revoke: %v, want a failed password authentication", err)
			}
		})
	}
}
