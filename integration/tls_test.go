//go:build integration

package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// testCA is a certificate authority a test makes for Vault's listeners
// and for clients of an mTLS listener. Its files live in a temp dir of the
// test that made it.
type testCA struct {
	CertFile string // the CA certificate, PEM: what AION_VAULT_CACERT names
	dir      string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
}

// newCA makes a self-signed CA valid from a minute ago for a day.
func newCA(t testing.TB) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "aion-exec test CA " + t.Name()},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key}
	ca.CertFile = writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	return ca
}

// serverCert issues a server certificate for names (IP addresses go into
// the IP SANs, the rest into the DNS SANs) valid from notBefore to
// notAfter, so that a test can make one with a wrong name or one that has
// expired.
func (ca *testCA) serverCert(t testing.TB, names []string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.issue(t, "server-"+names[0], tmpl)
}

// loopbackCert is a server certificate for 127.0.0.1 and localhost, valid
// for the test's lifetime.
func (ca *testCA) loopbackCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return ca.serverCert(t, []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
}

// clientCert issues a client certificate with common name cn.
func (ca *testCA) clientCert(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return ca.issue(t, "client-"+cn, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// issue signs tmpl with a fresh key and writes name.pem and name-key.pem.
func (ca *testCA) issue(t testing.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue certificate %s: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, filepath.Join(ca.dir, name+".pem"), "CERTIFICATE", der),
		writePEM(t, filepath.Join(ca.dir, name+"-key.pem"), "PRIVATE KEY", keyDER)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writePEM writes one PEM block, mode 0600, and returns path.
func writePEM(t testing.TB, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseCerts parses the certificates of a PEM bundle.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// newHTTPClient is a client for v's listener: it trusts v's CA and shows
// v's client certificate, if any; on plain HTTP it is a bare client. For a
// listener whose certificate a test made wrong on purpose (listenerCert),
// it checks only that v's CA signed the certificate: the harness must
// reach Vault to seed it, the test checks what aion-exec makes of it.
func (v *Vault) newHTTPClient() (*http.Client, error) {
	tr := &http.Transport{}
	if v.CACert != "" {
		pool := x509.NewCertPool()
		b, err := os.ReadFile(v.CACert)
		if err != nil || !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("read Vault's CA %s: %v", v.CACert, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if v.signatureOnly {
			cas, err := parseCerts(b)
			if err != nil {
				return nil, fmt.Errorf("read Vault's CA %s: %w", v.CACert, err)
			}
			tr.TLSClientConfig.InsecureSkipVerify = true
			tr.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
				for _, ca := range cas {
					if cs.PeerCertificates[0].CheckSignatureFrom(ca) == nil {
						return nil
					}
				}
				return fmt.Errorf("the listener's certificate is not signed by %s", v.CACert)
			}
		}
		if v.ClientCert != "" {
			kp, err := tls.LoadX509KeyPair(v.ClientCert, v.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("load client certificate %s: %w", v.ClientCert, err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{kp}
		}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// TestTLSHarness proves the TLS options with the Go API client as
// aion-exec configures it (the SDK's ConfigureTLS with a CA file): a
// listener with a wrong name, an expired certificate or one of another CA
// is refused, an mTLS listener answers only with a client certificate,
// and in each case the harness's own root client still gets through.
func TestTLSHarness(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca := newCA(t)
	wrongName, wrongNameKey := ca.serverCert(t, []string{"vault.example", "192.0.2.1"}, now.Add(-time.Minute), now.Add(time.Hour))
	expired, expiredKey := ca.serverCert(t, []string{"127.0.0.1"}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	other := newCA(t)
	for _, tc := range []struct {
		name    string
		opts    []vaultOption
		trust   func(v *Vault) api.TLSConfig
		wantErr string // "" is an answer
	}{
		{"default", nil, func(v *Vault) api.TLSConfig { return api.TLSConfig{CACert: v.CACert} }, ""},
		{"other CA", nil, func(*Vault) api.TLSConfig { return api.TLSConfig{CACert: other.CertFile} }, "x509: certificate signed by unknown authority"},
		{"wrong name", []vaultOption{listenerCert(ca, wrongName, wrongNameKey)}, func(v *Vault) api.TLSConfig { return api.TLSConfig{CACert: v.CACert} },
			"x509: certificate is valid for 192.0.2.1, not 127.0.0.1"},
		{"expired", []vaultOption{listenerCert(ca, expired, expiredKey)}, func(v *Vault) api.TLSConfig { return api.TLSConfig{CACert: v.CACert} },
			"x509: certificate has expired or is not yet valid"},
		{"mTLS with a client certificate", []vaultOption{requireClientCert()}, func(v *Vault) api.TLSConfig {
			return api.TLSConfig{CACert: v.CACert, ClientCert: v.ClientCert, ClientKey: v.ClientKey}
		}, ""},
		{"mTLS without one", []vaultOption{requireClientCert()}, func(v *Vault) api.TLSConfig { return api.TLSConfig{CACert: v.CACert} },
			"tls: certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := startVaultConfig(t, t.TempDir(), tc.opts...)
			if _, err := v.Root.Sys().Health(); err != nil {
				t.Fatalf("the harness's root client: %v", err)
			}
			trust := tc.trust(v)
			_, err := sdkClient(t, v.Addr, &trust).Sys().Health()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("health: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("health: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// sdkClient is an API client set up the way aion-exec sets up its own:
// a transport with a TLS config for the SDK's ConfigureTLS to fill in.
func sdkClient(t testing.TB, addr string, trust *api.TLSConfig) *api.Client {
	t.Helper()
	cfg := &api.Config{Address: addr, HttpClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}}
	if err := cfg.ConfigureTLS(trust); err != nil {
		t.Fatal(err)
	}
	return newAPIClient(t, cfg, "")
}
