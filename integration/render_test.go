//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// platform seeds the five secrets of the platform's contract.
func platform(t *testing.T) (*Vault, []string) {
	t.Helper()
	v := seeded(t)
	v.KVPut("secret", "aionos/dev/gateway-api-keys", map[string]any{"k-console-123": "console", "k-ci-456": "ci"})
	v.KVPut("secret", "aionos/dev/jwt", map[string]any{"keys": []any{map[string]any{"kid": "dev-1", "alg": "EdDSA", "public_key": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"}}})
	env := append(tokenEnv(v, rootToken),
		"AION_ENV=dev",
		"AION_DB_SECRET_PATH=aionos/${AION_ENV}/db-main",
		"AION_MINIO_SECRET_PATH=kv/aionos/minio",
		"AION_JWT_SECRET_PATH=aionos/dev/jwt",
		"AION_GATEWAY_API_KEYS_SECRET_PATH=aionos/dev/gateway-api-keys",
		"AION_ADMIN_TOKEN_SECRET_PATH=aionos/dev/admin-token",
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "render"),
	)
	return v, env
}

func TestOnceWritesFilesWithModes(t *testing.T) {
	t.Parallel()
	_, env := platform(t)
	dir := envValue(env, "AION_RENDER_DIR")
	r := aion(t, env, "once")
	if r.Code != 0 {
		t.Fatalf("once: exit %d\n%s", r.Code, r.Stderr)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("render dir: %v %v", st.Mode(), err)
	}
	for _, name := range []string{"gateway-keys.json", "admin-token", "jwt-public-keys.json"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	var keys map[string]string
	b, _ := os.ReadFile(filepath.Join(dir, "gateway-keys.json"))
	if err := json.Unmarshal(b, &keys); err != nil || keys["k-console-123"] != "console" || len(keys) != 2 {
		t.Errorf("gateway-keys.json = %s (%v)", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "admin-token")); strings.TrimSpace(string(b)) != "adm-9f8e7d6c5b4a" {
		t.Errorf("admin-token = %q", b)
	}
	var jwt map[string]any
	b, _ = os.ReadFile(filepath.Join(dir, "jwt-public-keys.json"))
	if err := json.Unmarshal(b, &jwt); err != nil {
		t.Errorf("jwt-public-keys.json does not parse: %v", err)
	}
	assertNoSecrets(t, r.Stdout+r.Stderr, "k-console-123")
}

// TestEnvEvalsBack checks that `aion-exec env` output, eval'd by sh and bash,
// restores every value exactly, quotes and all.
func TestEnvEvalsBack(t *testing.T) {
	t.Parallel()
	_, env := platform(t)
	r := aion(t, env, "env")
	if r.Code != 0 {
		t.Fatalf("env: exit %d\n%s", r.Code, r.Stderr)
	}
	want := map[string]string{
		"PGPASSWORD":       dbSecret["password"].(string),
		"PGUSER":           "aionos",
		"PGHOST":           "127.0.0.1",
		"PGPORT":           "5432",
		"PGDATABASE":       "aionos",
		"MINIO_SECRET_KEY": "minio-sk-123",
		"AION_ADMIN_TOKEN": "adm-9f8e7d6c5b4a",
	}
	for _, shell := range []string{"sh", "bash"} {
		script := r.Stdout + "\nfor n in PGPASSWORD PGUSER PGHOST PGPORT PGDATABASE MINIO_SECRET_KEY AION_ADMIN_TOKEN DATABASE_URL; do printf '%s=%s\\0' \"$n\" \"$(printenv $n)\"; done\n"
		out, err := exec.Command(shell, "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		got := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", shell, k, got[k], v)
			}
		}
		if !strings.HasPrefix(got["DATABASE_URL"], "postgres://aionos:") {
			t.Errorf("%s: DATABASE_URL = %q", shell, got["DATABASE_URL"])
		}
	}
}

func TestMissingKeyNamesTemplateSecretAndKey(t *testing.T) {
	t.Parallel()
	_, env := platform(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.env.tmpl"), "APP_URL={{ .db.url }}\n")
	r := aion(t, append(env, "AION_TEMPLATES_DIR="+dir), "--", "sh", "-c", "echo child-started")
	if r.Code != 65 {
		t.Fatalf("missing key: exit %d, want 65\n%s", r.Code, r.Stderr)
	}
	for _, want := range []string{"app.env.tmpl", "db", "url"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stdout, "child-started") {
		t.Error("the child started on a failed render")
	}
	assertNoSecrets(t, r.Stderr)
}

func TestNewlineInValueRefusedForEnv(t *testing.T) {
	t.Parallel()
	v, env := platform(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "aionos", "password": "line1\nINJECTED=1", "host": "127.0.0.1", "port": 5432, "database": "aionos"})
	r := aion(t, env, "--", "sh", "-c", "echo child-started")
	if r.Code != 65 {
		t.Fatalf("newline in a value: exit %d, want 65\n%s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stdout, "child-started") {
		t.Error("the child started")
	}
	if strings.Contains(r.Stderr, "INJECTED") || strings.Contains(r.Stderr, "line1") {
		t.Errorf("the value leaked into stderr:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "db") {
		t.Errorf("stderr does not name the secret:\n%s", r.Stderr)
	}
	r = aion(t, env, "env")
	if r.Code != 65 || strings.Contains(r.Stdout, "INJECTED") {
		t.Fatalf("env with a newline value: exit %d\n%s", r.Code, r.Stdout)
	}
}

func TestChildEnvironment(t *testing.T) {
	t.Parallel()
	_, env := platform(t)
	env = append(env, "VAULT_TOKEN=should-not-pass", "KEEP_ME=1")
	r := aion(t, env, "--", "sh", "-c", "env")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	for _, bad := range []string{"AION_VAULT_TOKEN=", "VAULT_TOKEN=", "AION_VAULT_APPROLE_SECRET_ID="} {
		for _, line := range strings.Split(r.Stdout, "\n") {
			if strings.HasPrefix(line, bad) {
				t.Errorf("the child sees %s", line[:strings.Index(line, "=")])
			}
		}
	}
	for _, good := range []string{"KEEP_ME=1", "PGUSER=aionos", "AION_GATEWAY_API_KEYS_FILE=", "AION_ADMIN_TOKEN_FILE=", "AION_JWT_PUBLIC_KEYS_FILE=", "MINIO_ENDPOINT=127.0.0.1:9000"} {
		if !strings.Contains(r.Stdout, good) {
			t.Errorf("the child lacks %s", good)
		}
	}
	r = aion(t, append(env, "AION_PASS_VAULT_CREDENTIALS=true"), "--", "sh", "-c", "env")
	if !strings.Contains(r.Stdout, "AION_VAULT_TOKEN=") {
		t.Error("AION_PASS_VAULT_CREDENTIALS=true did not pass the token")
	}
}
