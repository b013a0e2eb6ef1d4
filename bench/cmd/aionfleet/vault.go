package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// vaultAPI is kit.Vault: the little of Vault's HTTP API the benchmark needs.
type vaultAPI = kit.Vault

// vaultServer is the real (not -dev) Vault server: Raft storage, so that it
// survives a stop and a start, on loopback over plain HTTP.
type vaultServer struct {
	bin, config, logPath string
	api                  *vaultAPI
	unsealKey            string
	cmd                  *exec.Cmd
	done                 chan struct{}
}

// start starts the server process, appending to its log.
func (s *vaultServer) start() error {
	lf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(s.bin, "server", "-config="+s.config)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start vault: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	return nil
}

func (s *vaultServer) pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *vaultServer) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits (bounded) for the exit; then SIGKILL. It
// returns when the process is gone.
func (s *vaultServer) stop(timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	return fmt.Errorf("vault did not stop within %s after SIGTERM; killed", timeout)
}

// sealStatus is sys/seal-status, which answers sealed or not.
type sealStatus struct {
	Initialized bool `json:"initialized"`
	Sealed      bool `json:"sealed"`
}

// waitListening waits until the server answers sys/seal-status.
func (s *vaultServer) waitListening(ctx context.Context, timeout time.Duration) (sealStatus, error) {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		var st sealStatus
		if code, err := s.api.Status(ctx, "GET", "sys/seal-status", nil, &st); err == nil && code == 200 {
			return st, nil
		}
		if !s.running() {
			return sealStatus{}, fmt.Errorf("vault exited; see %s", s.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sealStatus{}, fmt.Errorf("vault did not answer within %s; see %s", timeout, s.logPath)
}

// initialize is `vault operator init -key-shares=1 -key-threshold=1`.
func (s *vaultServer) initialize(ctx context.Context) (root string, err error) {
	var out struct {
		Keys      []string `json:"keys"`
		RootToken string   `json:"root_token"`
	}
	if err := s.api.Do(ctx, "PUT", "sys/init", map[string]int{"secret_shares": 1, "secret_threshold": 1}, &out); err != nil {
		return "", err
	}
	if len(out.Keys) != 1 || out.RootToken == "" {
		return "", errors.New("sys/init: no key or root token")
	}
	s.unsealKey = out.Keys[0]
	return out.RootToken, nil
}

// unseal is `vault operator unseal KEY`, then a bounded wait for an active
// node (sys/health 200).
func (s *vaultServer) unseal(ctx context.Context, timeout time.Duration) error {
	var st sealStatus
	if err := s.api.Do(ctx, "PUT", "sys/unseal", map[string]string{"key": s.unsealKey}, &st); err != nil {
		return err
	}
	if st.Sealed {
		return errors.New("still sealed after the unseal key")
	}
	return s.waitActive(ctx, timeout)
}

func (s *vaultServer) waitActive(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if code, err := s.api.Status(ctx, "GET", "sys/health", nil, nil); err == nil && code == 200 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("vault not active within %s", timeout)
}

// fleetPolicy is least privilege: read the fleet's secrets, look up and
// renew its own token. sys/internal/ui/mounts needs no grant.
const fleetPolicy = `
path "secret/data/fleet/*" { capabilities = ["read"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
`

// setup enables kv-v2 at secret/, the file audit device, the policy, and
// seeds the secrets.
func setup(ctx context.Context, v *vaultAPI, auditPath string, secrets int) error {
	if err := v.Do(ctx, "POST", "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}}, nil); err != nil {
		return err
	}
	if err := v.Do(ctx, "PUT", "sys/audit/file", map[string]any{"type": "file", "options": map[string]string{"file_path": auditPath}}, nil); err != nil {
		return err
	}
	if err := v.Do(ctx, "PUT", "sys/policies/acl/fleet", map[string]string{"policy": fleetPolicy}, nil); err != nil {
		return err
	}
	for i := 1; i <= secrets; i++ {
		// A fresh kv-v2 mount upgrades itself for a moment and refuses
		// writes meanwhile: retry, bounded.
		var err error
		for try := 0; try < 100; try++ {
			if _, err = writeSecret(ctx, v, i); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeSecret writes secret i with fresh random fields and returns when
// the write was sent.
func writeSecret(ctx context.Context, v *vaultAPI, i int) (time.Time, error) {
	return v.WriteSecret(ctx, "secret/data/fleet/"+kit.SecretName(i))
}

// createToken makes one instance's token: scoped, renewable, a long TTL
// and its own display name, which the audit log shows as "token-NAME".
func createToken(ctx context.Context, v *vaultAPI, name string) (string, error) {
	tok, err := v.CreateToken(ctx, kit.Token{Policy: "fleet", TTL: "24h", DisplayName: name})
	if err == nil && tok == "" {
		err = errors.New("auth/token/create: no token")
	}
	return tok, err
}

// auditRequest is one request entry of the file audit device: when, by
// whom, what, and when its response was logged.
type auditRequest struct {
	At       time.Time
	Answered time.Time
	Who      string // the display name without "token-"
	Path     string
	Op       string
}

// readAudit returns the request entries of the audit log, with the time of
// their response.
func readAudit(path string) ([]auditRequest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseAudit(f)
}

func parseAudit(r io.Reader) ([]auditRequest, error) {
	es, err := kit.Exchanges(r)
	var out []auditRequest
	byID := map[string]int{}
	for _, e := range es {
		switch e.Type {
		case "request":
			byID[e.Request.ID] = len(out)
			out = append(out, auditRequest{At: e.Time, Who: e.Who(), Path: e.Request.Path, Op: e.Request.Operation})
		case "response":
			if i, ok := byID[e.Request.ID]; ok {
				out[i].Answered = e.Time
				delete(byID, e.Request.ID)
			}
		}
	}
	return out, err
}
