//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vaultOption changes how startVault or startVaultConfig starts a server.
type vaultOption func(*vaultOptions)

type vaultOptions struct {
	plain             bool
	plugins           bool
	ca                *testCA // the listener certificate's issuer, which clients trust
	certFile, keyFile string  // the listener's certificate; a loopback one from ca by default
	signatureOnly     bool    // the certificate is wrong on purpose: the harness checks only its signature
	mtls              bool
	nodeID            string
}

func newVaultOptions(t testing.TB, opts []vaultOption) *vaultOptions {
	t.Helper()
	o := &vaultOptions{nodeID: "node1"}
	for _, opt := range opts {
		opt(o)
	}
	if o.plain && (o.ca != nil || o.mtls) {
		t.Fatal("vault options: plainHTTP() with a certificate option")
	}
	return o
}

// plainHTTP starts the listener without TLS, for the one test that keeps
// the plain HTTP path covered.
func plainHTTP() vaultOption { return func(o *vaultOptions) { o.plain = true } }

// listenerCert gives the listener a certificate the test made (a wrong
// name, expired, or of another CA than the one aion-exec is told to
// trust); issuer is the CA that signed it. The harness's own clients then
// check only that issuer signed it.
func listenerCert(issuer *testCA, certFile, keyFile string) vaultOption {
	return func(o *vaultOptions) {
		o.ca, o.certFile, o.keyFile, o.signatureOnly = issuer, certFile, keyFile, true
	}
}

// requireClientCert makes the listener demand a client certificate of a
// client CA the test makes (tls_require_and_verify_client_cert); the
// server's ClientCert and ClientKey are a valid one, which the harness's
// clients show.
func requireClientCert() vaultOption { return func(o *vaultOptions) { o.mtls = true } }

// withPlugins gives Vault build-vault.sh's plugin directory (Vault's own
// PostgreSQL database plugin); a dev server registers what it finds there.
func withPlugins() vaultOption { return func(o *vaultOptions) { o.plugins = true } }

// signedBy has ca issue the listener's loopback certificate, so that
// several servers (a cluster) share one CA.
func signedBy(ca *testCA) vaultOption { return func(o *vaultOptions) { o.ca = ca } }

// raftNode names the server's Raft node (node1 by default).
func raftNode(id string) vaultOption { return func(o *vaultOptions) { o.nodeID = id } }

// pluginDir is where build-vault.sh puts the plugins it builds.
func pluginDir() string { return filepath.Join(filepath.Dir(vaultBin), "plugins") }

// configVault writes dir/vault.hcl for a Raft server on free loopback ports
// (API and cluster) and returns the server, not yet started.
func configVault(t testing.TB, dir string, o *vaultOptions) *Vault {
	t.Helper()
	port, cluster := freePort(t), freePort(t)
	v := &Vault{t: t, Addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
	tlsHCL := "tls_disable = true"
	if !o.plain {
		v.Addr = fmt.Sprintf("https://127.0.0.1:%d", port)
		ca := o.ca
		if ca == nil {
			ca = newCA(t)
		}
		cert, key := o.certFile, o.keyFile
		if cert == "" {
			cert, key = ca.loopbackCert(t)
		}
		v.CACert, v.signatureOnly = ca.CertFile, o.signatureOnly
		tlsHCL = fmt.Sprintf("tls_cert_file = %q\n  tls_key_file  = %q", cert, key)
		if o.mtls {
			clients := newCA(t)
			v.ClientCert, v.ClientKey = clients.clientCert(t, "aion-exec")
			tlsHCL += fmt.Sprintf("\n  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = %q", clients.CertFile)
		}
	}
	plugins := ""
	if o.plugins {
		plugins = fmt.Sprintf("plugin_directory = %q", pluginDir())
	}
	// performance_multiplier 1: Raft's fastest timings (1s heartbeat and
	// election timeouts instead of 5s), for quick elections on loopback;
	// autopilot looks at the servers every 250ms, not every 2s, and
	// promotes stable non-voters every 500ms, not every 10s.
	hcl := fmt.Sprintf(`
storage "raft" {
  path                   = %q
  node_id                = %q
  performance_multiplier = 1
  autopilot_update_interval    = "250ms"
  autopilot_reconcile_interval = "500ms"
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  %s
}
api_addr      = %q
cluster_addr  = "https://127.0.0.1:%d"
disable_mlock = true
ui            = false
%s
`, filepath.Join(dir, "raft"), o.nodeID, port, cluster, tlsHCL, v.Addr, cluster, plugins)
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	v.args = []string{"server", "-config=" + cfg}
	return v
}

// retryJoin adds a retry_join stanza for each of leaders to the Raft
// storage of v, a server configVault made and not yet started, with
// caFile, the CA of the leaders' listeners.
func (v *Vault) retryJoin(caFile string, leaders ...*Vault) {
	v.t.Helper()
	cfg, ok := strings.CutPrefix(v.args[len(v.args)-1], "-config=")
	if !ok {
		v.t.Fatalf("retry_join: %v is not a server of configVault", v.args)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		v.t.Fatal(err)
	}
	stanzas := `storage "raft" {` + "\n"
	for _, l := range leaders {
		stanzas += fmt.Sprintf("  retry_join {\n    leader_api_addr     = %q\n    leader_ca_cert_file = %q\n  }\n", l.Addr, caFile)
	}
	hcl := strings.Replace(string(b), `storage "raft" {`+"\n", stanzas, 1)
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		v.t.Fatal(err)
	}
}
