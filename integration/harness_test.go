//go:build integration

// Package integration runs the aion-exec binary against real parts: a Vault
// server built from the module proxy (build-vault.sh), PostgreSQL clusters
// started from Debian's binaries, and Node.js children. Run with
//
//	go test -tags integration ./integration/
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// Vault is one running Vault server.
type Vault struct {
	Addr  string
	Root  *api.Client // root token client, for seeding
	cmd   *exec.Cmd
	log   *bytes.Buffer
	args  []string
	mu    sync.Mutex
	t     testing.TB
	alive chan struct{}

	rootToken, unsealKey string // Raft servers only
}

const rootToken = "root-token-for-tests"

// startVault starts `vault server -dev` on a free loopback port with an
// in-memory store; it is stopped at the end of the test.
func startVault(t testing.TB) *Vault {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := &Vault{Addr: "http://" + addr, t: t, args: []string{"server", "-dev",
		"-dev-listen-address=" + addr, "-dev-root-token-id=" + rootToken, "-dev-no-store-token"}}
	v.start()
	t.Cleanup(v.Stop)
	return v
}

// startVaultConfig starts a Vault server from an HCL config (Raft storage,
// so data survives restarts); it is not initialised.
func startVaultConfig(t testing.TB, dir string) *Vault {
	t.Helper()
	port := freePort(t)
	cluster := freePort(t)
	hcl := fmt.Sprintf(`
storage "raft" {
  path    = %q
  node_id = "node1"
}
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:%d"
cluster_addr  = "http://127.0.0.1:%d"
disable_mlock = true
ui            = false
`, filepath.Join(dir, "raft"), port, port, cluster)
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &Vault{Addr: fmt.Sprintf("http://127.0.0.1:%d", port), t: t, args: []string{"server", "-config=" + cfg}}
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
	for {
		resp, err := http.Get(v.Addr + "/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-v.alive:
			t.Fatalf("vault exited: %s", v.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not listen on %s: %s", v.Addr, v.log)
		}
	}
	c, err := api.NewClient(&api.Config{Address: v.Addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(rootToken)
	v.Root = c
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

// result is one finished aion-exec run.
type result struct {
	Code           int
	Stdout, Stderr string
}

// aion runs the aion-exec binary to completion with env (and nothing of
// ours: tests must not lean on the developer's VAULT_* variables).
func aion(t testing.TB, env []string, args ...string) result {
	t.Helper()
	return aionIn(t, "", env, args...)
}

// aionIn is aion with the binary's working directory set to dir: dev
// bootstrap writes .vault/ and .env.vault.dev into the current directory.
func aionIn(t testing.TB, dir string, env []string, args ...string) result {
	t.Helper()
	return runIn(t, dir, append(baseEnv(), env...), aionBin, args...)
}

// runIn runs a program to completion in dir with exactly env.
func runIn(t testing.TB, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return result{code, so.String(), se.String()}
}

// repoRoot is the checkout this file lives in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// unsealRoot reads the root token from dev bootstrap's unseal file in dir.
func unsealRoot(t testing.TB, dir string) string {
	t.Helper()
	var u struct {
		RootToken string `json:"root_token"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".vault", "dev-unseal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &u); err != nil || u.RootToken == "" {
		t.Fatalf("unseal file: %v", err)
	}
	return u.RootToken
}

// baseEnv is a minimal environment for children: PATH and HOME only.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AION_LOG_LEVEL=debug"}
}

// lineReader hands out the lines a process writes, for waiting on them
// with a deadline instead of sleeping.
type lineReader struct {
	lines chan string
	mu    sync.Mutex
	all   []string
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lr.mu.Lock()
			lr.all = append(lr.all, sc.Text())
			lr.mu.Unlock()
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// waitFor returns the first line (from now on) that has substr.
func (lr *lineReader) waitFor(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				t.Fatalf("stream ended while waiting for %q; got:\n%s", substr, lr.text())
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; got:\n%s", substr, timeout, lr.text())
		}
	}
}

func (lr *lineReader) text() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return strings.Join(lr.all, "\n")
}

// initRaft initialises and unseals a Vault started with startVaultConfig,
// mounts KV v2 at secret/, and returns the unseal key (for after restarts).
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
	if v.rootToken != "" {
		v.Root.SetToken(v.rootToken)
	}
	if _, err := v.Root.Sys().Unseal(v.unsealKey); err != nil {
		v.t.Fatalf("unseal: %v", err)
	}
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

// eventually polls cond (a server's observable state) until it returns nil
// or timeout passes.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}
