package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// newFleet writes the Vault server's configuration into the scratch
// directory and the run's settings into its results.
func newFleet(o options) (*fleet, error) {
	port, err := kit.FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := kit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(o.work, "vault.hcl")
	data := filepath.Join(o.work, "vault-data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg, []byte(vaultHCL(data, addr, port, cport)), 0o600); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	f := &fleet{
		vault: &vaultServer{bin: o.vaultBin, config: cfg, logPath: filepath.Join(o.work, "vault.log"),
			api: &vaultAPI{Addr: addr, HC: hc}},
		aion: o.aion, child: o.child, work: o.work, templates: filepath.Join(o.work, "templates"),
		n: o.n, secrets: o.secrets, interval: o.interval, startupTimeout: o.startupTimeout,
		auditPath: filepath.Join(o.work, "audit.log"),
	}
	f.res = &Results{
		When: time.Now().UTC(), Machine: machine(),
		Settings: Settings{
			Instances: o.n, Secrets: o.secrets, FieldsPerSecret: kit.Fields, IntervalS: o.interval.Seconds(),
			OutageS: o.outage.Seconds(), Rotations: o.rotations, SteadyS: o.steady.Seconds(), MarginS: o.margin.Seconds(),
			StartupTimeoutS: o.startupTimeout.Seconds(), Storage: "raft", TLS: false, VaultAddr: addr,
			AionVersion: kit.Version(o.aion, "version"), VaultVersion: kit.Version(o.vaultBin, "version"),
		},
	}
	return f, nil
}

// vaultHCL is the server's configuration: integrated (Raft) storage, one
// node, as examples/compose runs it, so that the data survives a stop and
// a start (the -tags minimal build has no file storage).
func vaultHCL(data, addr string, port, cport int) string {
	return fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "fleet-vault"
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr      = %q
cluster_addr  = "http://127.0.0.1:%d"
disable_mlock = true
ui            = false
log_level     = "info"
`, data, port, cport, addr, cport)
}

// startVault starts a real server, initialises it with one key share,
// unseals it and sets it up for the fleet.
func (f *fleet) startVault(ctx context.Context) error {
	logf("starting %s on %s (raft storage, plain HTTP on loopback)", f.res.Settings.VaultVersion, f.vault.api.Addr)
	if err := f.vault.start(); err != nil {
		return err
	}
	if _, err := f.vault.waitListening(ctx, 60*time.Second); err != nil {
		return err
	}
	root, err := f.vault.initialize(ctx)
	if err != nil {
		return err
	}
	if err := f.vault.unseal(ctx, 60*time.Second); err != nil {
		return err
	}
	f.vault.api.Token = root
	if err := setup(ctx, f.vault.api, f.auditPath, f.secrets); err != nil {
		return fmt.Errorf("set Vault up: %w", err)
	}
	return nil
}

// prepareAll makes every instance's token, the shared template and every
// instance's command.
func (f *fleet) prepareAll(ctx context.Context) error {
	logf("creating %d tokens", f.n)
	tokens, err := f.createTokens(ctx)
	if err != nil {
		return err
	}
	if err := writeTemplates(f.templates, f.secrets); err != nil {
		return err
	}
	for i := 1; i <= f.n; i++ {
		in, err := f.prepare(i, tokens[i])
		if err != nil {
			return err
		}
		f.insts = append(f.insts, in)
	}
	return nil
}

// createTokens makes the tokens of instances 1 … n, eight at a time.
func (f *fleet) createTokens(ctx context.Context) ([]string, error) {
	tokens := make([]string, f.n+1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 8)
	for i := 1; i <= f.n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tok, err := createToken(ctx, f.vault.api, displayName(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("create tokens: %w (and %d more)", errs[0], len(errs)-1)
	}
	return tokens, nil
}
