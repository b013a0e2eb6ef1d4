//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/bootstrap"
)

func TestBootstrapRaftVault(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir())
	work := t.TempDir()
	// config.Load asks for a token even though dev bootstrap needs none.
	env := bootstrapEnv(v, "AION_VAULT_TOKEN=unused", "AION_VAULT_BOOTSTRAP_TIMEOUT=60")
	stateDir := filepath.Join(work, ".vault")
	unsealPath := filepath.Join(stateDir, "dev-unseal.json")
	envPath := filepath.Join(work, ".env.vault.dev")

	// First run: initialise, unseal, configure, seed.
	r := aionIn(t, work, env, "dev", "bootstrap")
	if r.Code != 0 {
		t.Fatalf("first dev bootstrap exited %d\nstdout:\n%s\nstderr:\n%s\nvault:\n%s", r.Code, r.Stdout, r.Stderr, v.log)
	}
	for _, want := range []string{"initialised (unseal key and root token in .vault/dev-unseal.json)", "unsealed",
		"secret/ (kv-v2)", "approle/ (approle)", "secret/aionos/dev/db-main", "created (ttl 24h, renewable)", ".env.vault.dev"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("first run's summary lacks %q:\n%s", want, r.Stdout)
		}
	}
	t.Logf("first run:\n%s%s", r.Stdout, r.Stderr)
	if strings.Contains(r.Stdout, "present") {
		t.Errorf("first run on a fresh Vault found something present:\n%s", r.Stdout)
	}
	assertMode(t, stateDir, 0o700)
	assertMode(t, unsealPath, 0o600)
	assertMode(t, envPath, 0o600)

	unsealJSON, err := os.ReadFile(unsealPath)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct {
		UnsealKeysB64 []string `json:"unseal_keys_b64"`
		RootToken     string   `json:"root_token"`
	}
	if err := json.Unmarshal(unsealJSON, &keys); err != nil || len(keys.UnsealKeysB64) != 1 || keys.RootToken == "" {
		t.Fatalf("unseal file %s: %v\n%s", unsealPath, err, unsealJSON)
	}
	root := v.Client(keys.RootToken)
	envText, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	vars := sourceEnvFile(t, envPath)
	devToken := vars["AION_VAULT_TOKEN"]
	wantVars := map[string]string{
		"AION_VAULT_ADDR": v.Addr, "AION_VAULT_CACERT": v.CACert, "AION_VAULT_KV_MOUNT": "secret", "AION_ENV": "dev",
		"AION_DB_SECRET_PATH": "aionos/dev/db-main", "AION_MINIO_SECRET_PATH": "aionos/dev/minio",
		"AION_JWT_SECRET_PATH": "aionos/dev/jwt", "AION_GATEWAY_API_KEYS_SECRET_PATH": "aionos/dev/gateway-api-keys",
		"AION_ADMIN_TOKEN_SECRET_PATH": "aionos/dev/admin-token", "AION_VAULT_TOKEN": devToken,
	}
	if devToken == "" || !maps.Equal(vars, wantVars) {
		t.Errorf("sourced %s:\n%v\nwant\n%v", envPath, vars, wantVars)
	}

	// Nothing secret on the terminal.
	secretValues := []string{keys.RootToken, keys.UnsealKeysB64[0], devToken}
	for _, name := range []string{"db-main", "minio", "admin-token", "gateway-api-keys", "dev-ca", "jwt-signing", "control-tls"} {
		s, err := root.KVv2("secret").Get(context.Background(), "aionos/dev/"+name)
		if err != nil {
			t.Fatal(err)
		}
		for k, val := range s.Data {
			switch k {
			case "password", "secret_key", "token", "private_key":
				secretValues = append(secretValues, fmt.Sprint(val))
			}
			if name == "gateway-api-keys" {
				secretValues = append(secretValues, k)
			}
		}
	}
	for _, sv := range secretValues {
		if strings.Contains(r.Stdout+r.Stderr, sv) {
			t.Errorf("dev bootstrap output leaks a secret value (%.6s...)", sv)
		}
	}

	// The dev token: renewable, scoped to aion-exec-dev.
	look, err := root.Auth().Token().Lookup(devToken)
	if err != nil {
		t.Fatal(err)
	}
	pols, _ := look.TokenPolicies()
	renewable, _ := look.TokenIsRenewable()
	ttl, _ := look.TokenTTL()
	if !slices.Equal(pols, []string{"aion-exec-dev", "default"}) || !renewable || ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("dev token: policies %v, renewable %t, ttl %s; want [aion-exec-dev default], renewable, 24h", pols, renewable, ttl)
	}

	// A developer edits a secret; bootstrap must leave it alone.
	edited := map[string]any{"username": "me", "password": "edited-by-a-developer", "host": "db.local", "port": 6543, "database": "mine"}
	if _, err := root.KVv2("secret").Put(context.Background(), "aionos/dev/db-main", edited); err != nil {
		t.Fatal(err)
	}
	versions := kvVersions(t, root)
	// And loosens the state files' modes, which the next run restores.
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unsealPath, 0o644); err != nil {
		t.Fatal(err)
	}

	// Second run: idempotent.
	r = aionIn(t, work, env, "dev", "bootstrap")
	if r.Code != 0 {
		t.Fatalf("second dev bootstrap exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if strings.Contains(r.Stdout, "created") || strings.Contains(r.Stdout, "updated") || strings.Contains(r.Stdout, "unsealed\n") {
		t.Errorf("second run changed something:\n%s", r.Stdout)
	}
	for _, want := range [][3]string{
		{"vault", v.Addr, "unsealed before"},
		{"token", "aion-exec-dev", "present (from .env.vault.dev)"},
		{"file", ".env.vault.dev", "unchanged"},
	} {
		if !summaryHas(r.Stdout, want[0], want[1], want[2]) {
			t.Errorf("second run's summary lacks %q:\n%s", want, r.Stdout)
		}
	}
	if again, _ := os.ReadFile(unsealPath); !bytes.Equal(again, unsealJSON) {
		t.Error("second run changed the unseal file")
	}
	assertMode(t, stateDir, 0o700)
	assertMode(t, unsealPath, 0o600)
	if again, _ := os.ReadFile(envPath); !bytes.Equal(again, envText) {
		t.Errorf("second run changed the env file:\n%s\nwas\n%s", again, envText)
	}
	if got := kvVersions(t, root); !maps.Equal(got, versions) {
		t.Errorf("second run changed KV versions: %v, was %v", got, versions)
	}
	if s, err := root.KVv2("secret").Get(context.Background(), "aionos/dev/db-main"); err != nil || s.Data["password"] != "edited-by-a-developer" {
		t.Errorf("the developer's edit of db-main is gone: %v, %v", err, s)
	}

	// Restart: Raft storage survives and Vault comes back sealed.
	v.Restart()
	if h, err := root.Sys().Health(); err != nil || !h.Sealed {
		t.Fatalf("after restart: %+v, %v; want sealed", h, err)
	}
	// From a directory without the unseal file: a clear error, exit 69.
	elsewhere := t.TempDir()
	r = aionIn(t, elsewhere, env, "dev", "bootstrap")
	if r.Code != 69 || !strings.Contains(r.Stderr, ".vault/dev-unseal.json does not exist") {
		t.Errorf("sealed Vault without the unseal file: exit %d, want 69 naming .vault/dev-unseal.json\nstderr:\n%s", r.Code, r.Stderr)
	}
	r = aionIn(t, work, env, "dev", "bootstrap")
	if r.Code != 0 || !strings.Contains(r.Stdout, "unsealed\n") {
		t.Fatalf("dev bootstrap after restart exited %d, want 0 and unsealed\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if h, err := root.Sys().Health(); err != nil || h.Sealed || h.Standby {
		t.Fatalf("after bootstrap: %+v, %v; want active", h, err)
	}
	if got := kvVersions(t, root); !maps.Equal(got, versions) {
		t.Errorf("run after restart changed KV versions: %v, was %v", got, versions)
	}
	if again, _ := os.ReadFile(envPath); !bytes.Equal(again, envText) {
		t.Error("run after restart changed the env file")
	}
	// Unsealed and initialised, but no unseal file here: exit 64 naming it.
	r = aionIn(t, elsewhere, env, "dev", "bootstrap")
	if r.Code != 64 || !strings.Contains(r.Stderr, ".vault/dev-unseal.json") {
		t.Errorf("unsealed Vault without the unseal file: exit %d, want 64 naming .vault/dev-unseal.json\nstderr:\n%s", r.Code, r.Stderr)
	}

	t.Run("dev token reads every seeded secret", func(t *testing.T) {
		checkEnv := append(envList(vars), "AION_RENDER_DIR="+t.TempDir())
		for _, name := range bootstrap.SecretNames() {
			if !slices.ContainsFunc(checkEnv, func(kv string) bool { return strings.HasSuffix(kv, "=aionos/dev/"+name) }) {
				checkEnv = append(checkEnv, "AION_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"_X_SECRET_PATH=aionos/${AION_ENV}/"+name)
			}
		}
		r := aionIn(t, work, checkEnv, "check")
		if r.Code != 0 {
			t.Fatalf("check with the dev token exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
		ok := 0
		for _, line := range strings.Split(r.Stdout, "\n") {
			if strings.HasPrefix(line, "secret ") && strings.HasSuffix(line, " OK") {
				ok++
			}
		}
		if ok != len(bootstrap.SecretNames()) {
			t.Errorf("check: %d secrets OK, want %d:\n%s", ok, len(bootstrap.SecretNames()), r.Stdout)
		}
		if !strings.Contains(r.Stdout, "render   OK") {
			t.Errorf("check did not render the built-in templates:\n%s", r.Stdout)
		}
		if strings.Contains(r.Stderr, "not a setting of aion-exec") {
			t.Errorf("the env file's variables draw typo warnings:\n%s", r.Stderr)
		}
	})

	t.Run("dev token cannot write or leave dev", func(t *testing.T) {
		dev := v.Client(devToken)
		_, err := dev.KVv2("secret").Put(context.Background(), "aionos/dev/db-main", map[string]any{"password": "x"})
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("dev token writing db-main: %v, want 403", err)
		}
		if _, err := dev.KVv2("secret").Put(context.Background(), "aionos/dev/new", map[string]any{"a": "b"}); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("dev token creating a secret: %v, want 403", err)
		}
		if _, err := root.KVv2("secret").Put(context.Background(), "aionos/prod/db-main", map[string]any{"password": "prod"}); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.KVv2("secret").Get(context.Background(), "aionos/prod/db-main"); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("dev token reading prod: %v, want 403", err)
		}
		if err := dev.Sys().PutPolicy("mine", `path "*" { capabilities = ["sudo"] }`); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("dev token writing a policy: %v, want 403", err)
		}
		if _, err := dev.Auth().Token().RenewSelf(3600); err != nil {
			t.Errorf("dev token renewing itself: %v", err)
		}
	})

	// Role IDs from the env file's comments: "# <service> role_id=<id>".
	roleIDs := map[string]string{}
	for _, line := range strings.Split(string(envText), "\n") {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			if svc, id, ok := strings.Cut(rest, " role_id="); ok {
				roleIDs[svc] = id
			}
		}
	}
	for _, svc := range bootstrap.Services {
		t.Run("approle "+svc, func(t *testing.T) {
			s, err := root.Logical().Read("auth/approle/role/" + svc + "/role-id")
			if err != nil || s == nil {
				t.Fatalf("read role ID: %v", err)
			}
			if want := fmt.Sprint(s.Data["role_id"]); roleIDs[svc] != want {
				t.Errorf("env file role ID %q, want %q", roleIDs[svc], want)
			}
			base := append(v.addrEnv(), "AION_ENV=dev", "AION_RENDER_DIR="+t.TempDir(),
				"AION_VAULT_APPROLE_ROLE_ID="+roleIDs[svc])

			own := append(append(slices.Clone(base), serviceSecrets[svc]...),
				"AION_VAULT_APPROLE_SECRET_ID="+wrappedSecretID(t, v, keys.RootToken, svc))
			r := aionIn(t, work, own, "check")
			if r.Code != 0 {
				t.Fatalf("check as %s with a wrapped secret ID exited %d\nstdout:\n%s\nstderr:\n%s", svc, r.Code, r.Stdout, r.Stderr)
			}
			wantPols := "policies [" + strings.Join(slices.Sorted(slices.Values([]string{"default", svc})), ",") + "]"
			if !strings.Contains(r.Stdout, "auth     approle at auth/approle OK") || !strings.Contains(r.Stdout, wantPols) {
				t.Errorf("check as %s lacks an approle login with %s:\n%s", svc, wantPols, r.Stdout)
			}

			other := append(slices.Clone(base), foreignSecret[svc],
				"AION_VAULT_APPROLE_SECRET_ID="+wrappedSecretID(t, v, keys.RootToken, svc))
			r = aionIn(t, work, other, "check")
			if r.Code != 77 || !strings.Contains(r.Stdout+r.Stderr, "permission denied") {
				t.Errorf("check as %s of %s exited %d, want 77 (permission denied)\nstdout:\n%s\nstderr:\n%s", svc, foreignSecret[svc], r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}

// TestBootstrapOtherMount: with AION_VAULT_KV_MOUNT=team/kv the policies are
// templated onto that mount; deleted secrets are re-seeded consistent with
// the rest; a KV v1 mount is refused by name.
func TestBootstrapOtherMount(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir())
	work := t.TempDir()
	env := bootstrapEnv(v, "AION_VAULT_TOKEN=unused", "AION_VAULT_KV_MOUNT=team/kv")
	r := aionIn(t, work, env, "dev", "bootstrap")
	if r.Code != 0 {
		t.Fatalf("dev bootstrap exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !summaryHas(r.Stdout, "secret", "team/kv/aionos/dev/db-main", "created") {
		t.Errorf("summary lacks team/kv/aionos/dev/db-main created:\n%s", r.Stdout)
	}
	var keys struct {
		RootToken string `json:"root_token"`
	}
	b, _ := os.ReadFile(filepath.Join(work, ".vault", "dev-unseal.json"))
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	root := v.Client(keys.RootToken)
	pol, err := root.Sys().GetPolicy("control")
	if err != nil || !strings.Contains(pol, `path "team/kv/data/aionos/+/db-main"`) || strings.Contains(pol, `path "secret/`) {
		t.Errorf("control policy not templated onto team/kv (%v):\n%s", err, pol)
	}

	vars := sourceEnvFile(t, filepath.Join(work, ".env.vault.dev"))
	if vars["AION_VAULT_KV_MOUNT"] != "team/kv" {
		t.Errorf("env file AION_VAULT_KV_MOUNT = %q, want team/kv", vars["AION_VAULT_KV_MOUNT"])
	}
	r = aionIn(t, work, append(envList(vars), "AION_RENDER_DIR="+t.TempDir()), "check")
	if r.Code != 0 {
		t.Fatalf("check with the dev token exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	s, err := root.Logical().Read("auth/approle/role/control/role-id")
	if err != nil {
		t.Fatal(err)
	}
	r = aionIn(t, work, append(append(v.addrEnv(), "AION_VAULT_KV_MOUNT=team/kv", "AION_ENV=dev", "AION_RENDER_DIR="+t.TempDir(),
		"AION_VAULT_APPROLE_ROLE_ID="+fmt.Sprint(s.Data["role_id"]),
		"AION_VAULT_APPROLE_SECRET_ID="+wrappedSecretID(t, v, keys.RootToken, "control")), serviceSecrets["control"]...), "check")
	if r.Code != 0 {
		t.Fatalf("check as control on team/kv exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// Secrets removed by a developer come back consistent with what stays:
	// a certificate signed by the existing CA, a JWKS of the existing
	// signing key.
	kv := root.KVv2("team/kv")
	ctx := context.Background()
	caBefore, err := kv.Get(ctx, "aionos/dev/dev-ca")
	if err != nil {
		t.Fatal(err)
	}
	signing, err := kv.Get(ctx, "aionos/dev/jwt-signing")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"control-tls", "jwt"} {
		if err := kv.DeleteMetadata(ctx, "aionos/dev/"+name); err != nil {
			t.Fatal(err)
		}
	}
	r = aionIn(t, work, env, "dev", "bootstrap")
	if r.Code != 0 || !summaryHas(r.Stdout, "secret", "team/kv/aionos/dev/control-tls", "created") || !summaryHas(r.Stdout, "secret", "team/kv/aionos/dev/jwt", "created") ||
		!summaryHas(r.Stdout, "secret", "team/kv/aionos/dev/dev-ca", "present") {
		t.Fatalf("re-seeding exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	tlsSecret, err := kv.Get(ctx, "aionos/dev/control-tls")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(caBefore.Data["certificate"].(string))) {
		t.Fatal("dev-ca certificate is not PEM")
	}
	blk, _ := pem.Decode([]byte(tlsSecret.Data["certificate"].(string)))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "control", Roots: roots}); err != nil {
		t.Errorf("re-created control-tls does not chain to the existing dev CA: %v", err)
	}
	if tlsSecret.Data["ca_chain"] != caBefore.Data["certificate"] {
		t.Error("re-created control-tls carries another ca_chain than the existing dev CA")
	}
	jwks, err := kv.Get(ctx, "aionos/dev/jwt")
	if err != nil {
		t.Fatal(err)
	}
	jwkList, _ := jwks.Data["keys"].([]any)
	if len(jwkList) != 1 || jwkList[0].(map[string]any)["kid"] != signing.Data["kid"] {
		t.Errorf("re-created jwt %v does not publish the existing signing key %v", jwks.Data, signing.Data["kid"])
	}

	if err := root.Sys().Mount("legacy", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	r = aionIn(t, work, bootstrapEnv(v, "AION_VAULT_TOKEN=unused", "AION_VAULT_KV_MOUNT=legacy"), "dev", "bootstrap")
	if r.Code != 64 || !strings.Contains(r.Stderr, "legacy/") || !strings.Contains(r.Stderr, "KV version 1 engine") {
		t.Errorf("bootstrap onto a KV v1 mount exited %d, want 64 naming legacy/ and KV version 1\nstderr:\n%s", r.Code, r.Stderr)
	}
}
