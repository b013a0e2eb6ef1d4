//go:build integration

package integration

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// pkiRole is the role PKI writes: names under .internal, localhost and IP
// SANs, certificates of up to an hour (10 minutes unless asked).
const pkiRole = "internal"

// PKI enables pki/ with an internal root CA (max lease TTL 24h) and the
// role pkiRole, and returns the path of the CA certificate's PEM, for a
// client that is to trust what pki/issue/internal issues.
func (v *Vault) PKI(t testing.TB) string {
	t.Helper()
	if err := v.Root.Sys().Mount("pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "24h"}}); err != nil {
		t.Fatalf("enable pki/: %v", err)
	}
	root := v.Write("pki/root/generate/internal", map[string]any{
		"common_name": "aion-exec test PKI", "ttl": "24h", "key_type": "ec", "key_bits": 256,
	})
	v.Write("pki/roles/"+pkiRole, map[string]any{
		"allowed_domains": "internal", "allow_subdomains": true, "allow_localhost": true, "allow_ip_sans": true,
		"key_type": "ec", "key_bits": 256, "ttl": "10m", "max_ttl": "1h",
	})
	blk, _ := pem.Decode([]byte(root.Data["certificate"].(string)))
	if blk == nil {
		t.Fatalf("pki/root/generate/internal: no PEM certificate in %v", root.Data)
	}
	return writePEM(t, filepath.Join(t.TempDir(), "pki-ca.pem"), "CERTIFICATE", blk.Bytes)
}

// TestPKIHarness issues a short-lived certificate with the root client and
// checks it against the CA PKI returned; a name outside the role is
// refused.
func TestPKIHarness(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	caFile := v.PKI(t)
	s := v.Write("pki/issue/"+pkiRole, map[string]any{"common_name": "db.internal", "ip_sans": "127.0.0.1", "ttl": "2m"})
	blk, _ := pem.Decode([]byte(s.Data["certificate"].(string)))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(caFile)
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "db.internal"}); err != nil {
		t.Errorf("issued certificate: %v", err)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("issued certificate: %v", err)
	}
	if left := time.Until(cert.NotAfter); left > 2*time.Minute || left < time.Minute {
		t.Errorf("issued certificate valid for %s more, want about 2m", left)
	}
	if _, err := v.Root.Logical().Write("pki/issue/"+pkiRole, map[string]any{"common_name": "db.example.com"}); err == nil || !strings.Contains(err.Error(), "db.example.com") {
		t.Errorf("issue for db.example.com: %v, want a refusal naming it", err)
	}
}
