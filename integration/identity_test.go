//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// jwtVault is a dev Vault with the svc policy, the jwt method at auth/jwt
// (role app) and, as -tags minimal Vault has no kubernetes method, the jwt
// method at auth/kubernetes (role control, bound to one service account):
// the login request is the same {role, jwt}, the validation Vault's own.
func jwtVault(t *testing.T) (*Vault, *jwtSigner) {
	t.Helper()
	v := seeded(t)
	s := newJWTSigner(t)
	v.JWTAuth(t, "jwt", s.PublicKeyPEM, "app", []string{"vault"}, nil, []string{"svc"}, time.Hour)
	v.JWTAuth(t, "kubernetes", s.PublicKeyPEM, "control", []string{"vault"},
		map[string]any{"kubernetes.io/serviceaccount/namespace": "aionos", "kubernetes.io/serviceaccount/service-account.name": "control"},
		[]string{"svc"}, time.Hour)
	return v, s
}

// writeJWT replaces path with jwt the way a kubelet does: a new file
// renamed into place.
func writeJWT(t *testing.T, path, jwt string) {
	t.Helper()
	write(t, path+".tmp", jwt)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func TestJWTAndKubernetesLogins(t *testing.T) {
	t.Parallel()
	v, s := jwtVault(t)
	dir := t.TempDir()
	in := time.Now().Add(10 * time.Minute)
	base := append(v.addrEnv(), "AION_DB_SECRET_PATH=aionos/dev/db-main")
	for _, tc := range []struct {
		method, role string
		claims       map[string]any
		want         string
	}{
		{"jwt", "app", jwtClaims("https://ci.example", "build-7", []string{"vault"}, in), "auth     jwt at auth/jwt as role app OK"},
		{"kubernetes", "control", serviceAccountClaims("aionos", "control", []string{"vault"}, in), "auth     kubernetes at auth/kubernetes as role control OK"},
	} {
		file := filepath.Join(dir, tc.method)
		jwt := s.sign(t, tc.claims)
		writeJWT(t, file, jwt)
		r := aion(t, append(base, "AION_VAULT_AUTH_METHOD="+tc.method, "AION_VAULT_AUTH_ROLE="+tc.role, "AION_VAULT_JWT_FILE="+file), "check")
		if r.Code != 0 || !strings.Contains(r.Stdout, tc.want) || !strings.Contains(r.Stdout, "policies [default,svc]") {
			t.Errorf("%s: exit %d\n%s\n%s", tc.method, r.Code, r.Stdout, r.Stderr)
		}
		assertNoSecrets(t, r.Stdout+r.Stderr, jwt)
	}
	// An expired JWT is named as such: exit 77, one line.
	file := filepath.Join(dir, "expired")
	writeJWT(t, file, s.sign(t, jwtClaims("https://ci.example", "build-7", []string{"vault"}, time.Now().Add(-10*time.Minute))))
	r := aion(t, append(base, "AION_VAULT_AUTH_METHOD=jwt", "AION_VAULT_AUTH_ROLE=app", "AION_VAULT_JWT_FILE="+file), "--", "true")
	lines := aionLines(r.Stderr)
	if r.Code != 77 || len(lines) != 1 || !strings.Contains(lines[0], "Vault refused the JWT in AION_VAULT_JWT_FILE "+file+" (it expired at ") ||
		!strings.Contains(lines[0], "token is expired") {
		t.Errorf("expired JWT: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A projected token rotates: the new file is read at the next login, which
// the rotation itself triggers. The audit log shows the new JWT sent.
func TestJWTFileRotated(t *testing.T) {
	t.Parallel()
	v, s := jwtVault(t)
	audit := filepath.Join(t.TempDir(), "audit.log")
	if err := v.Root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": audit}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	in := time.Now().Add(10 * time.Minute)
	writeJWT(t, file, s.sign(t, serviceAccountClaims("aionos", "control", []string{"vault"}, in)))
	env, _ := watchEnv(t, v)
	env = append(withoutToken(env), "AION_VAULT_AUTH_METHOD=kubernetes", "AION_VAULT_AUTH_ROLE=control", "AION_VAULT_JWT_FILE="+file)
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)

	second := s.sign(t, serviceAccountClaims("aionos", "control", []string{"vault"}, in.Add(time.Minute)))
	writeJWT(t, file, second)
	r.stderr.waitFor(t, "credential file changed; logging in again", 10*time.Second)
	r.stderr.waitFor(t, "vault login renewed", 10*time.Second)
	hash, err := v.Root.Logical().Write("sys/audit-hash/file", map[string]any{"input": second})
	if err != nil {
		t.Fatal(err)
	}
	if sent := auditLoginJWTs(t, audit, "auth/kubernetes/login"); len(sent) != 2 || sent[1] != hash.Data["hash"] {
		t.Errorf("logins sent %d JWTs; the last is not the rotated one", len(sent))
	}
}

// auditLoginJWTs lists, in order, the (HMACed) jwt of every login request
// to path in Vault's audit log.
func auditLoginJWTs(t *testing.T, log, path string) []string {
	t.Helper()
	var out []string
	for _, r := range auditRequests(t, log) {
		if r.Path == path {
			jwt, _ := r.Data["jwt"].(string)
			out = append(out, jwt)
		}
	}
	return out
}

func withoutToken(env []string) []string { return withoutEnv(env, "AION_VAULT_TOKEN") }

// certLogin mounts the cert method with role web for a client CA and
// returns a client certificate it accepts.
func certLogin(t *testing.T, v *Vault) (certFile, keyFile string) {
	t.Helper()
	clients := newCA(t)
	if err := v.Root.Sys().EnableAuthWithOptions("cert", &api.EnableAuthOptions{Type: "cert"}); err != nil {
		t.Fatal(err)
	}
	v.Write("auth/cert/certs/web", map[string]any{"certificate": readFile(t, clients.CertFile), "token_policies": "svc", "token_ttl": "1h"})
	return clients.clientCert(t, "web.internal")
}

func TestCertLogin(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	cert, key := certLogin(t, v)
	r := aion(t, append(v.addrEnv(), "AION_VAULT_AUTH_METHOD=cert", "AION_VAULT_AUTH_ROLE=web", "AION_VAULT_CLIENT_CERT="+cert,
		"AION_VAULT_CLIENT_KEY="+key, "AION_DB_SECRET_PATH=aionos/dev/db-main"), "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "auth     cert at auth/cert as role web OK") || !strings.Contains(r.Stdout, "policies [default,svc]") {
		t.Errorf("cert login: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
}
