package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // path of the CA certificate
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &testCA{cert: cert, key: key, pem: p}
}

// issue makes a leaf for ip (server) or a client certificate.
func (ca *testCA) issue(t *testing.T, notAfter time.Time, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "vault"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"vault.internal"},
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) writeClient(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	c := ca.issue(t, time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// lookupSelf is a token's lookup-self answer: a token that never expires.
const lookupSelf = `{"data":{"accessor":"a","policies":["default"],"ttl":0}}`

// tlsVault answers lookup-self over TLS with cert; clientCAs, when set,
// requires a client certificate signed by it.
func tlsVault(t *testing.T, cert tls.Certificate, clientCAs *testCA) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, lookupSelf)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCAs.cert)
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func tlsLogin(t *testing.T, addr string, opts TLS) error {
	t.Helper()
	c, err := New(Options{Addrs: []string{addr}, TLS: opts, StartupTimeout: 30 * time.Second,
		Auth: AuthOptions{Method: "token", Token: "hvs.t"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Login(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s: a certificate problem must fail at once, not wait for Vault", took)
	}
	return err
}

func TestTLSFailuresAreOneLineAtOnce(t *testing.T) {
	ca, other := newTestCA(t, "aion test CA"), newTestCA(t, "other CA")
	good := tlsVault(t, ca.issue(t, time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth), nil)
	expired := tlsVault(t, ca.issue(t, time.Now().Add(-time.Minute), x509.ExtKeyUsageServerAuth), nil)
	mtls := tlsVault(t, ca.issue(t, time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth), ca)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	certFile, keyFile := ca.writeClient(t)
	strangerCert, strangerKey := other.writeClient(t)
	port := good.URL[strings.LastIndex(good.URL, ":")+1:]

	for _, tt := range []struct {
		name string
		addr string
		opts TLS
		code int
		msg  string
	}{
		{"ok", good.URL, TLS{CACert: ca.pem}, 0, ""},
		{"ok by name", "https://localhost:" + port, TLS{CACert: ca.pem, ServerName: "vault.internal"}, 0, ""},
		{"ok capath", good.URL, TLS{CAPath: filepath.Dir(ca.pem)}, 0, ""},
		{"unknown CA", good.URL, TLS{CACert: other.pem}, sysexits.Usage,
			`Vault at ` + good.URL + `: its certificate is signed by an unknown authority (issuer "aion test CA"); set AION_VAULT_CACERT or AION_VAULT_CAPATH`},
		{"system roots", good.URL, TLS{}, sysexits.Usage, "signed by an unknown authority"},
		{"wrong name", "https://localhost:" + port, TLS{CACert: ca.pem}, sysexits.Usage,
			`its certificate is not valid for "localhost" (it is for vault.internal, 127.0.0.1); fix AION_VAULT_ADDR or set AION_VAULT_TLS_SERVER_NAME`},
		{"expired", expired.URL, TLS{CACert: ca.pem}, sysexits.Unavailable, "its certificate is outside its validity"},
		{"skip verify", expired.URL, TLS{SkipVerify: true}, 0, ""},
		{"no client cert", mtls.URL, TLS{CACert: ca.pem}, sysexits.Usage, "requires a client certificate; set AION_VAULT_CLIENT_CERT and AION_VAULT_CLIENT_KEY"},
		{"client cert", mtls.URL, TLS{CACert: ca.pem, ClientCert: certFile, ClientKey: keyFile}, 0, ""},
		{"stranger client cert", mtls.URL, TLS{CACert: ca.pem, ClientCert: strangerCert, ClientKey: strangerKey}, sysexits.NoPerm,
			"refused the client certificate of AION_VAULT_CLIENT_CERT"},
		{"https to plain", "https" + strings.TrimPrefix(plain.URL, "http"), TLS{}, sysexits.Usage, "speaks plain HTTP; use http:// in AION_VAULT_ADDR"},
		{"http to TLS", "http" + strings.TrimPrefix(good.URL, "https"), TLS{}, sysexits.Usage, "speaks TLS; use https:// in AION_VAULT_ADDR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tlsLogin(t, tt.addr, tt.opts)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				return
			}
			if sysexits.Code(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v (exit %d)\nwant one line with %q, exit %d", err, sysexits.Code(err), tt.msg, tt.code)
			}
		})
	}
}

// cert-manager replaces the CA file in place: the next handshake trusts
// the new one, with no restart.
func TestCAFileIsReadAgainWhenItChanges(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	srv := tlsVault(t, newCA.issue(t, time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth), nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	copyFile(t, oldCA.pem, caFile)
	c, err := New(Options{Addrs: []string{srv.URL}, TLS: TLS{CACert: caFile}, StartupTimeout: time.Second, Auth: AuthOptions{Method: "token", Token: "hvs.t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background()); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("old CA: %v", err)
	}
	copyFile(t, newCA.pem, caFile)
	if _, err := c.Login(context.Background()); err != nil {
		t.Fatalf("after the CA file changed: %v", err)
	}
	if pc := c.ServerCertificate(); pc == nil || pc.Issuer.CommonName != "new CA" {
		t.Errorf("ServerCertificate = %v", pc)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// cert-manager replaces the client certificate and key in place with ones
// of a new CA, which the listener now requires: the next handshake
// presents the new certificate, with no restart. The listener closes each
// connection after one request, so every request is a handshake.
func TestClientCertIsReadAgainWhenItChanges(t *testing.T) {
	serverCA, oldCA, newCA := newTestCA(t, "server CA"), newTestCA(t, "old client CA"), newTestCA(t, "new client CA")
	var required atomic.Pointer[testCA]
	required.Store(oldCA)
	var (
		mu        sync.Mutex
		presented []string // issuers of the client certificates requests came with
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		presented = append(presented, r.TLS.PeerCertificates[0].Issuer.CommonName)
		mu.Unlock()
		io.WriteString(w, lookupSelf)
	}))
	srv.Config.SetKeepAlivesEnabled(false)
	serverCert := serverCA.issue(t, time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := x509.NewCertPool()
		pool.AddCert(required.Load().cert)
		return &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	oldCert, oldKey := oldCA.writeClient(t)
	copyFile(t, oldCert, certFile)
	copyFile(t, oldKey, keyFile)
	c, err := New(Options{Addrs: []string{srv.URL}, TLS: TLS{CACert: serverCA.pem, ClientCert: certFile, ClientKey: keyFile},
		StartupTimeout: time.Second, Auth: AuthOptions{Method: "token", Token: "hvs.t"}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(want string) {
		t.Helper()
		mu.Lock()
		presented = nil
		mu.Unlock()
		if _, err := c.Login(context.Background()); err != nil {
			t.Fatalf("login with the %s's certificate: %v", want, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(presented) == 0 || slices.ContainsFunc(presented, func(s string) bool { return s != want }) {
			t.Errorf("the listener saw certificates of %q, want only %q", presented, want)
		}
	}
	login("old client CA")

	newCert, newKey := newCA.writeClient(t)
	copyFile(t, newCert, certFile)
	copyFile(t, newKey, keyFile)
	required.Store(newCA)
	login("new client CA")
}
