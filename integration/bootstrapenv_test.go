//go:build integration

package integration

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/bootstrap"
)

// What the dev bootstrap tests (and the e2e and examples tests after a
// dev bootstrap) share: clients, the bootstrap's environment, its env
// file, its summary, the services' secrets.

// vaultClient is a plain API client for addr with token, deaf to the
// developer's VAULT_* variables; for a Vault the test started, v.Client
// (which trusts its CA) is the one to use.
func vaultClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	return newAPIClient(t, &api.Config{Address: addr}, token)
}

// bootstrapEnv is the environment of `aion-exec dev bootstrap` against v:
// its address and CA (AION_VAULT_CACERT alone), and extra.
func bootstrapEnv(v *Vault, extra ...string) []string {
	return append(v.addrEnv(), extra...)
}

// sourceEnvFile sources path with sh, as a developer would, and returns the
// AION_* variables it sets.
func sourceEnvFile(t testing.TB, path string) map[string]string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `. "$1" && env`, "sh", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("source %s: %v", path, err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "AION_") {
			vars[k] = v
		}
	}
	return vars
}

func envList(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

// kvVersions returns the current KV-v2 version of every seeded secret.
func kvVersions(t *testing.T, root *api.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range bootstrap.SecretNames() {
		s, err := root.Logical().Read("secret/metadata/aionos/dev/" + name)
		if err != nil || s == nil {
			t.Fatalf("read metadata of %s: %v (%v)", name, err, s)
		}
		out[name] = fmt.Sprint(s.Data["current_version"])
	}
	return out
}

// serviceSecrets are the secrets each service's policy grants, as the
// AION_<NAME>_SECRET_PATH a service would set; the ${AION_ENV} form is the
// platform's.
var serviceSecrets = map[string][]string{
	"gateway": {"AION_JWT_SECRET_PATH=aionos/${AION_ENV}/jwt", "AION_GATEWAY_API_KEYS_SECRET_PATH=aionos/${AION_ENV}/gateway-api-keys",
		"AION_ADMIN_TOKEN_SECRET_PATH=aionos/${AION_ENV}/admin-token", "AION_GATEWAY_TLS_SECRET_PATH=aionos/${AION_ENV}/gateway-tls",
		"AION_MTLS_CA_SECRET_PATH=aionos/${AION_ENV}/mtls-ca"},
	"control": {"AION_DB_SECRET_PATH=aionos/${AION_ENV}/db-main", "AION_MINIO_SECRET_PATH=aionos/${AION_ENV}/minio",
		"AION_CONTROL_TLS_SECRET_PATH=aionos/${AION_ENV}/control-tls", "AION_MTLS_CA_SECRET_PATH=aionos/${AION_ENV}/mtls-ca"},
	"console": {"AION_ADMIN_TOKEN_SECRET_PATH=aionos/${AION_ENV}/admin-token"},
}

// foreignSecret is, per service, a secret of another service it must not read.
var foreignSecret = map[string]string{
	"gateway": "AION_DB_SECRET_PATH=aionos/${AION_ENV}/db-main",
	"control": "AION_ADMIN_TOKEN_SECRET_PATH=aionos/${AION_ENV}/admin-token",
	"console": "AION_DB_SECRET_PATH=aionos/${AION_ENV}/db-main",
}

// wrappedSecretID issues a secret ID for role, response-wrapped the way a
// deploy hands it over.
func wrappedSecretID(t *testing.T, v *Vault, rootToken, role string) string {
	t.Helper()
	c := v.Client(rootToken)
	c.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	s, err := c.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatalf("issue a wrapped secret ID for %s: %v", role, err)
	}
	if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" {
		t.Fatalf("issue a wrapped secret ID for %s: no wrapping token in %+v", role, s)
	}
	return s.WrapInfo.Token
}

// summaryHas reports whether dev bootstrap's summary has the row
// kind, name, result (columns are aligned with spaces).
func summaryHas(stdout, kind, name, result string) bool {
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == kind && f[1] == name && strings.Join(f[2:], " ") == result {
			return true
		}
	}
	return false
}
