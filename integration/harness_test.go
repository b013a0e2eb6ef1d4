//go:build integration

// Package integration runs the aion-exec binary against real parts: a Vault
// server built from the module proxy (build-vault.sh), PostgreSQL clusters
// started from Debian's binaries, and Node.js children. Vault listens on
// TLS with a CA the test trusts unless a test is about plain HTTP. Run with
//
//	go test -tags integration ./integration/
package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

var (
	vaultBin string // the pinned Vault server build
	aionBin  string // aion-exec built from this tree
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(sigexecVar); spec != "" {
		fmt.Fprintln(os.Stderr, "integration: start with signals set:", sigexec(spec, os.Args[1:]))
		os.Exit(2)
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	out, err := exec.Command(filepath.Join(dir, "build-vault.sh")).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: build-vault.sh:", err)
		return 1
	}
	vaultBin = strings.TrimSpace(string(out))
	tmp, err := os.MkdirTemp("", "aion-exec-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	aionBin = filepath.Join(tmp, "aion-exec")
	build := exec.Command("./build.sh", aionBin) // as it ships
	build.Dir = filepath.Dir(dir)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: build aion-exec:", err)
		return 1
	}
	return m.Run()
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Vault is one running Vault server. By default its listener speaks TLS
// with a certificate of a CA the test trusts (CACert); plainHTTP() is for
// the one test that keeps the plain path covered.
type Vault struct {
	Addr                  string      // https://127.0.0.1:PORT (http:// on plain HTTP)
	CACert                string      // PEM of the CA that signed the listener's certificate; "" on plain HTTP
	ClientCert, ClientKey string      // a client certificate the listener accepts (requireClientCert only)
	Root                  *api.Client // root token client, for seeding
	cmd                   *exec.Cmd
	log                   *bytes.Buffer
	args                  []string
	mu                    sync.Mutex
	t                     testing.TB
	alive                 chan struct{}

	devCertDir    string // where -dev-tls writes its CA (removed when the server exits)
	signatureOnly bool   // the listener's certificate is one a test made wrong on purpose

	rootToken, unsealKey string // Raft servers only
}

const rootToken = "root-token-for-tests"

// startVault starts `vault server -dev` on a free loopback port with an
// in-memory store, TLS from -dev-tls (Vault makes the CA); it is stopped
// at the end of the test. A test that needs a certificate of its own
// (a wrong name, expired, another CA) uses startVaultConfig.
func startVault(t testing.TB, opts ...vaultOption) *Vault {
	t.Helper()
	o := newVaultOptions(t, opts)
	if o.ca != nil || o.mtls {
		t.Fatal("startVault: listener certificates and mTLS need startVaultConfig")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := &Vault{Addr: "http://" + addr, t: t, args: []string{"server", "-dev",
		"-dev-listen-address=" + addr, "-dev-root-token-id=" + rootToken, "-dev-no-store-token"}}
	if !o.plain {
		v.Addr = "https://" + addr
		v.devCertDir = t.TempDir()
		v.args = append(v.args, "-dev-tls", "-dev-tls-cert-dir="+v.devCertDir)
	}
	if o.plugins {
		v.args = append(v.args, "-dev-plugin-dir="+pluginDir())
	}
	v.start()
	t.Cleanup(v.Stop)
	return v
}

// startVaultConfig starts a Vault server from an HCL config (Raft storage,
// so data survives restarts) with a TLS listener; it is not initialised.
func startVaultConfig(t testing.TB, dir string, opts ...vaultOption) *Vault {
	t.Helper()
	v := configVault(t, dir, newVaultOptions(t, opts))
	v.start()
	t.Cleanup(v.Stop)
	return v
}

func (v *Vault) start() {
	t := v.t
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.log = &bytes.Buffer{}
	v.cmd = exec.Command(vaultBin, v.args...)
	v.cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn", "HOME="+t.TempDir())
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start vault: %v", err)
	}
	v.alive = make(chan struct{})
	go func(cmd *exec.Cmd, alive chan struct{}) { cmd.Wait(); close(alive) }(v.cmd, v.alive)
	// Wait on /v1/sys/health: any answer (even sealed, 503) means it listens.
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for {
		if err = v.ping(); err == nil {
			break
		}
		select {
		case <-v.alive:
			t.Fatalf("vault exited: %s", v.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not answer on %s: %v\n%s", v.Addr, err, v.log)
		}
	}
	v.Root = v.Client(rootToken)
	if v.rootToken != "" {
		v.Root.SetToken(v.rootToken)
	}
}

// ping asks /v1/sys/health once. A dev server writes a fresh CA on each
// start: it is copied out of the directory Vault removes on exit.
func (v *Vault) ping() error {
	if v.devCertDir != "" {
		b, err := os.ReadFile(filepath.Join(v.devCertDir, "vault-ca.pem"))
		if err != nil || !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("no CA from -dev-tls yet: %v", err)
		}
		v.CACert = filepath.Join(filepath.Dir(v.devCertDir), "dev-tls-ca.pem")
		if err := os.WriteFile(v.CACert, b, 0o600); err != nil {
			return err
		}
	}
	hc, err := v.newHTTPClient()
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(v.Addr + "/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Client is an API client for v with token: it trusts v's CA, shows v's
// client certificate, and is deaf to the developer's VAULT_* variables.
func (v *Vault) Client(token string) *api.Client {
	v.t.Helper()
	hc, err := v.newHTTPClient()
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(hc.CloseIdleConnections)
	return newAPIClient(v.t, &api.Config{Address: v.Addr, HttpClient: hc}, token)
}

func newAPIClient(t testing.TB, cfg *api.Config, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetNamespace("")
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	c.SetToken(token)
	return c
}

// addrEnv is how aion-exec finds v: its address, and its CA.
func (v *Vault) addrEnv() []string {
	env := []string{"AION_VAULT_ADDR=" + v.Addr}
	if v.CACert != "" {
		env = append(env, "AION_VAULT_CACERT="+v.CACert)
	}
	return env
}

// Stop kills the server and waits for it to exit.
func (v *Vault) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	v.cmd.Process.Signal(os.Interrupt)
	select {
	case <-v.alive:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-v.alive
	}
	v.cmd = nil
}

// Kill kills the server (SIGKILL) and waits for it to exit.
func (v *Vault) Kill() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	v.cmd.Process.Kill()
	<-v.alive
	v.cmd = nil
}

// running reports whether the server was started and not stopped.
func (v *Vault) running() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cmd != nil
}

// Restart starts the same server again (same address, same storage).
func (v *Vault) Restart() {
	v.Stop()
	v.start()
}

// KVPut writes data to a KV-v2 secret at mount/path.
func (v *Vault) KVPut(mount, path string, data map[string]any) int {
	v.t.Helper()
	s, err := v.Root.KVv2(mount).Put(context.Background(), path, data)
	if err != nil {
		v.t.Fatalf("kv put %s/%s: %v", mount, path, err)
	}
	return s.VersionMetadata.Version
}

// Write is a raw logical write as root.
func (v *Vault) Write(path string, data map[string]any) *api.Secret {
	v.t.Helper()
	s, err := v.Root.Logical().Write(path, data)
	if err != nil {
		v.t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// Token creates a token with the given policies and options.
func (v *Vault) Token(policies []string, ttl string, renewable bool) string {
	v.t.Helper()
	r := renewable
	s, err := v.Root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: ttl, Renewable: &r, NoDefaultPolicy: false})
	if err != nil {
		v.t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

// Policy writes a policy.
func (v *Vault) Policy(name, hcl string) {
	v.t.Helper()
	if err := v.Root.Sys().PutPolicy(name, hcl); err != nil {
		v.t.Fatalf("put policy %s: %v", name, err)
	}
}

// initRaft initialises and unseals a Vault started with startVaultConfig,
// mounts KV v2 at secret/, and returns the root token; the unseal key is
// kept for unseal after restarts.
func (v *Vault) initRaft() string {
	v.t.Helper()
	resp, err := v.Root.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		v.t.Fatalf("init vault: %v", err)
	}
	v.Root.SetToken(resp.RootToken)
	v.rootToken = resp.RootToken
	v.unsealKey = resp.KeysB64[0]
	v.unseal()
	if err := v.Root.Sys().Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		v.t.Fatalf("mount kv: %v", err)
	}
	return resp.RootToken
}

// unseal unseals after a restart and waits until the node is active (Raft
// elects itself leader a moment after unsealing).
func (v *Vault) unseal() {
	v.t.Helper()
	v.submitUnsealKey()
	eventually(v.t, "vault active after unseal", 30*time.Second, func() error {
		h, err := v.Root.Sys().Health()
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed || h.Standby {
			return fmt.Errorf("health %+v", h)
		}
		_, err = v.Root.Sys().ListMounts()
		return err
	})
}

// submitUnsealKey gives the server the unseal key initRaft kept.
func (v *Vault) submitUnsealKey() {
	v.t.Helper()
	if _, err := v.Root.Sys().Unseal(v.unsealKey); err != nil {
		v.t.Fatalf("unseal %s: %v", v.Addr, err)
	}
}
