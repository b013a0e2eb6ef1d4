//go:build integration

package integration

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CA of Vault's listener is trusted from a file or from a directory,
// and `check` shows what the certificate says: its subject, the CA the
// harness made as its issuer, its expiry and the whole days left.
func TestTLSTrustFromCACertAndCAPath(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	tok := v.Token([]string{"svc"}, "1h", true)
	dir := t.TempDir()
	b, err := os.ReadFile(v.CACert)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := parseCerts(b)
	if err != nil || len(cas) != 1 {
		t.Fatalf("the harness's CA %s: %d certificates, %v", v.CACert, len(cas), err)
	}
	write(t, filepath.Join(dir, "vault-ca.pem"), string(b))
	leaf := servedCert(t, v)
	for name, trust := range map[string]string{"cacert": "AION_VAULT_CACERT=" + v.CACert, "capath": "AION_VAULT_CAPATH=" + dir} {
		before := daysLeft(leaf)
		r := aion(t, []string{"AION_VAULT_ADDR=" + v.Addr, "AION_VAULT_TOKEN=" + tok, trust, "AION_DB_SECRET_PATH=aionos/dev/db-main"}, "check")
		// A day may end while check runs: either count is right then.
		ok := false
		for _, days := range []int{before, daysLeft(leaf)} {
			ok = ok || strings.Contains(r.Stdout, fmt.Sprintf("tls      verified: subject %q, issuer %q, expires %s (%d days)\n",
				leaf.Subject.CommonName, cas[0].Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), days))
		}
		if r.Code != 0 || !ok || !strings.Contains(r.Stdout, "render   OK") {
			t.Errorf("%s: exit %d, want the listener's certificate (subject %q, issuer %q, expires %s, %d days left)\n%s\n%s", name, r.Code,
				leaf.Subject.CommonName, cas[0].Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), before, r.Stdout, r.Stderr)
		}
	}
}

// servedCert is the certificate v's listener shows, as the harness's own
// client sees it.
func servedCert(t *testing.T, v *Vault) *x509.Certificate {
	t.Helper()
	hc, err := v.newHTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(v.Addr + "/v1/sys/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("%s showed no certificate", v.Addr)
	}
	return resp.TLS.PeerCertificates[0]
}

// daysLeft is what `check` prints: whole days until the certificate expires.
func daysLeft(c *x509.Certificate) int { return int(time.Until(c.NotAfter).Hours() / 24) }

// A server certificate that does not verify fails at once, with one line
// naming the address, what failed and the setting to fix; no waiting for
// a Vault that is there.
func TestTLSBadServerCertificates(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	now := time.Now()
	wrongCert, wrongKey := ca.serverCert(t, []string{"vault.internal"}, now.Add(-time.Minute), now.Add(24*time.Hour))
	oldCert, oldKey := ca.serverCert(t, []string{"127.0.0.1", "localhost"}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	strangeCert, strangeKey := other.loopbackCert(t)
	for _, tc := range []struct {
		name   string
		opt    vaultOption
		code   int
		want   string
		remedy string
	}{
		{"unknown authority", listenerCert(other, strangeCert, strangeKey), 64, "its certificate is signed by an unknown authority", "set AION_VAULT_CACERT or AION_VAULT_CAPATH"},
		{"wrong name", listenerCert(ca, wrongCert, wrongKey), 64, `its certificate is not valid for "127.0.0.1" (it is for vault.internal)`, "set AION_VAULT_TLS_SERVER_NAME"},
		{"expired", listenerCert(ca, oldCert, oldKey), 69, "its certificate is outside its validity", "renew Vault's certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := startVaultConfig(t, t.TempDir(), tc.opt)
			start := time.Now()
			r := aion(t, []string{"AION_VAULT_ADDR=" + v.Addr, "AION_VAULT_TOKEN=hvs.x", "AION_VAULT_CACERT=" + ca.CertFile,
				"AION_STARTUP_TIMEOUT=60s", "AION_DB_SECRET_PATH=a/b"}, "--", "true")
			took := time.Since(start)
			lines := aionLines(r.Stderr)
			if r.Code != tc.code || len(lines) != 1 || !strings.Contains(lines[0], "Vault at "+v.Addr+": "+tc.want) || !strings.Contains(lines[0], tc.remedy) {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.Code, tc.code, r.Stderr)
			}
			if took > 10*time.Second || strings.Contains(r.Stderr, "waiting for vault") {
				t.Errorf("took %s waiting for Vault: a certificate problem must fail at once", took)
			}
		})
	}
}

// aionLines are aion-exec's own error lines on stderr (not log lines).
func aionLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "aion-exec: ") {
			out = append(out, l)
		}
	}
	return out
}

// A listener that requires client certificates: without one, one line
// saying which settings to set; with one, everything works.
func TestMutualTLSListener(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir(), requireClientCert())
	root := v.initRaft()
	v.KVPut("secret", "aionos/dev/db-main", dbSecret)
	env := []string{"AION_VAULT_ADDR=" + v.Addr, "AION_VAULT_TOKEN=" + root, "AION_VAULT_CACERT=" + v.CACert, "AION_DB_SECRET_PATH=aionos/dev/db-main"}
	r := aion(t, env, "check")
	if lines := aionLines(r.Stderr); r.Code != 64 || len(lines) != 1 ||
		!strings.Contains(lines[0], "Vault at "+v.Addr+" requires a client certificate; set AION_VAULT_CLIENT_CERT and AION_VAULT_CLIENT_KEY") {
		t.Errorf("without a client certificate: exit %d\n%s", r.Code, r.Stderr)
	}
	r = aion(t, append(env, "AION_VAULT_CLIENT_CERT="+v.ClientCert, "AION_VAULT_CLIENT_KEY="+v.ClientKey), "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "render   OK") {
		t.Errorf("with a client certificate: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// cert-manager replaces the CA and the server certificate in place: after
// Vault restarts with the new certificate, the next poll trusts the new CA
// file, with no restart of aion-exec, and rotations keep arriving.
func TestCAFileReplacedOnDisk(t *testing.T) {
	t.Parallel()
	ca1, ca2 := newCA(t), newCA(t)
	cert, key := ca1.loopbackCert(t)
	// The harness trusts both CAs; aion-exec only the file it is given.
	both := &testCA{CertFile: filepath.Join(t.TempDir(), "both.pem")}
	write(t, both.CertFile, readFile(t, ca1.CertFile)+readFile(t, ca2.CertFile))
	v := startVaultConfig(t, t.TempDir(), listenerCert(both, cert, key))
	v.initRaft()
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "port": 5432, "database": "app"})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	write(t, caFile, readFile(t, ca1.CertFile))
	env, _ := watchEnv(t, v)
	env = replaceEnv(replaceEnv(env, "AION_VAULT_TOKEN", v.rootToken), "AION_VAULT_CACERT", caFile)
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)

	newCert, newKey := ca2.loopbackCert(t)
	v.Stop()
	write(t, cert, readFile(t, newCert))
	write(t, key, readFile(t, newKey))
	write(t, caFile+".new", readFile(t, ca2.CertFile))
	if err := os.Rename(caFile+".new", caFile); err != nil {
		t.Fatal(err)
	}
	v.start()
	v.unseal()
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db1", "port": 5432, "database": "app"})
	// The restart closed every connection: the read that brings pw-2 made
	// a new handshake, with the new certificate, trusted by the new file.
	if hup := r.stdout.waitFor(t, "sighup", 20*time.Second); !strings.Contains(hup, "pw-2") {
		t.Errorf("after the CA rotation: %s", hup)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceEnv sets name=value in env, replacing an earlier one.
func replaceEnv(env []string, name, value string) []string {
	return append(withoutEnv(env, name), name+"="+value)
}

// withoutEnv is env without name.
func withoutEnv(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// AION_VAULT_SKIP_VERIFY against the TLS Vault with no CA given: aion-exec
// starts, reads and rotates, and warns once, at its start, not at each
// poll or connection.
func TestSkipVerifyStartsAndWarnsOnce(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env, _ := watchEnv(t, v)
	env = append(withoutEnv(env, "AION_VAULT_CACERT"), "AION_VAULT_SKIP_VERIFY=true")
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	putPassword(v, "pw-2")
	if hup := r.stdout.waitFor(t, "sighup", 5*time.Second); !strings.Contains(hup, "pw-2") || pidOf(t, hup) != pid {
		t.Fatalf("after the rotation: %s", hup)
	}
	for range 3 { // polls after the rotation, each on the same client
		r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=true", 5*time.Second)
	}
	var warned []string
	for _, l := range strings.Split(r.stderr.text(), "\n") {
		if strings.Contains(l, "AION_VAULT_SKIP_VERIFY") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "level=WARN") || !strings.Contains(warned[0], "Vault's certificate is not verified") {
		t.Errorf("want one warning about AION_VAULT_SKIP_VERIFY, got %d:\n%s", len(warned), strings.Join(warned, "\n"))
	}
}
