package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// vaultAPI is kit.Vault: the little of Vault's HTTP API the benchmark needs.
type vaultAPI = kit.Vault

// leasePolicy is what every tool's token may do: read the role's
// credentials, renew and revoke leases, look up and renew itself.
const leasePolicy = `
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
`

// Setup is what setupVault configures.
type Setup struct {
	PGPort          int
	PGUser, PGPass  string
	TTL, MaxTTL     time.Duration
	AuditPath       string
	Plugin          string
	TokenTTL        string
	DisplayPrefix   string
	Tools           []string
	CreationSQL     string
	RevocationSQL   string
	CredsPath, Role string
}

// creationSQL and revocationSQL are the role's statements, as in the
// integration tests (integration/plugin_test.go): a login role that may
// connect to the postgres database until its lease ends, dropped when the
// lease is revoked.
const creationSQL = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT CONNECT ON DATABASE postgres TO "{{name}}";`

const revocationSQL = `REVOKE ALL PRIVILEGES ON DATABASE postgres FROM "{{name}}";
DROP ROLE IF EXISTS "{{name}}";`

// setupVault enables the raw file audit device, the database engine with
// role app on PostgreSQL, the policy, and one token per tool; it returns
// the tokens by tool.
func setupVault(ctx context.Context, v *vaultAPI, s Setup) (map[string]string, error) {
	steps := []struct {
		method, path string
		body         any
	}{
		// log_raw: the benchmark matches the user in a child's
		// environment to the read that obtained it, and renewals to their
		// lease; the log lives in the run's scratch directory.
		{"PUT", "sys/audit/file", map[string]any{"type": "file", "options": map[string]string{"file_path": s.AuditPath, "log_raw": "true"}}},
		{"POST", "sys/mounts/database", map[string]any{"type": "database"}},
		{"POST", "database/config/" + s.Role, map[string]any{
			"plugin_name":    s.Plugin,
			"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable", s.PGPort),
			"username":       s.PGUser, "password": s.PGPass,
			"allowed_roles": s.Role,
		}},
		{"POST", "database/roles/" + s.Role, map[string]any{
			"db_name":               s.Role,
			"creation_statements":   []string{s.CreationSQL},
			"revocation_statements": []string{s.RevocationSQL},
			"default_ttl":           int(s.TTL.Seconds()),
			"max_ttl":               int(s.MaxTTL.Seconds()),
		}},
		{"PUT", "sys/policies/acl/leases", map[string]string{"policy": leasePolicy}},
	}
	for _, st := range steps {
		if err := v.Do(ctx, st.method, st.path, st.body, nil); err != nil {
			return nil, err
		}
	}
	tokens := map[string]string{}
	for _, t := range s.Tools {
		// No default policy: Vault parses its templated HCL on every
		// request (see aionbench's tokenFor); leasePolicy has all a tool
		// needs here.
		tok, err := v.CreateToken(ctx, kit.Token{Policy: "leases", TTL: s.TokenTTL, DisplayName: s.DisplayPrefix + t})
		if err != nil {
			return nil, err
		}
		tokens[t] = tok
	}
	return tokens, nil
}

// leaseWatch asks Vault (as root) every interval for the end of every
// lease under the role, so that the report has Vault's own expiry times
// rather than ones computed from the TTLs. Its requests are root's, which
// the counts leave out.
type leaseWatch struct {
	mu      sync.Mutex
	expires map[string]time.Time
	polls   int
}

func (w *leaseWatch) run(ctx context.Context, v *vaultAPI, prefix string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.poll(ctx, v, prefix)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *leaseWatch) poll(ctx context.Context, v *vaultAPI, prefix string) {
	var list struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	if err := v.Do(ctx, "LIST", "sys/leases/lookup/"+prefix+"/", nil, &list); err != nil {
		return // none yet (404), or Vault busy: the next poll
	}
	for _, k := range list.Data.Keys {
		var l struct {
			Data struct {
				ID         string `json:"id"`
				ExpireTime string `json:"expire_time"`
			} `json:"data"`
		}
		if err := v.Do(ctx, "PUT", "sys/leases/lookup", map[string]string{"lease_id": prefix + "/" + k}, &l); err != nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, l.Data.ExpireTime); err == nil {
			w.mu.Lock()
			if w.expires == nil {
				w.expires = map[string]time.Time{}
			}
			w.expires[l.Data.ID] = t
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	w.polls++
	w.mu.Unlock()
}

func (w *leaseWatch) snapshot() (map[string]time.Time, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]time.Time, len(w.expires))
	for k, v := range w.expires {
		m[k] = v
	}
	return m, w.polls
}
