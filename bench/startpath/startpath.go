// Package startpath replays aion-exec's start path (config → templates →
// Vault client → login → reads → render → files) step by step in one
// process, so that Go benchmarks and profiles can say where launch → child
// start goes. It imports aion-exec's internal packages (the bench module
// lives under the main module's path, which the internal rule allows) and
// must only ever read them: it measures, it does not change behaviour.
package startpath

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/vault"
)

// Fields is how many fields each bench secret has, as in bench/run.sh.
const Fields = kit.Fields

// Name is bench secret i's name: s001.
func Name(i int) string { return kit.SecretName(i) }

// WriteTemplate writes the bench's user template for n secrets into dir:
// S001_F1={{ .s001.f1 }} and so on, 5×n lines.
func WriteTemplate(dir string, n int) error {
	return os.WriteFile(filepath.Join(dir, "bench.env.tmpl"), []byte(kit.EnvTemplate(n)), 0o600)
}

// Env is the environment aion-exec gets in the benchmark, for n secrets.
func Env(addr, token, templates, renderDir string, n int) map[string]string {
	env := map[string]string{
		"AION_VAULT_ADDR":    addr,
		"AION_VAULT_TOKEN":   token,
		"AION_TEMPLATES_DIR": templates,
		"AION_RENDER_DIR":    renderDir,
		"AION_POLL_INTERVAL": "2s",
		"AION_RESTART_ON":    "never",
		"AION_LOG_LEVEL":     "warn",
	}
	for _, kv := range kit.SecretVars("bench", n) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// Data is template data for n secrets, shaped as Vault's JSON decodes.
func Data(n int, salt string) render.Data {
	d := render.Data{render.EnvKey: ""}
	for i := 1; i <= n; i++ {
		m := map[string]any{}
		for f := 1; f <= Fields; f++ {
			m[fmt.Sprintf("f%d", f)] = fmt.Sprintf("%s-%03d-%d-0123456789abcdef", salt, i, f)
		}
		d[Name(i)] = m
	}
	return d
}

// Step is one timed step of the start path.
type Step struct {
	Name string
	Took time.Duration
}

// Run replays the start path once, with a fresh Vault client (new
// connections, as a fresh process has), and returns each step's time. The
// settings come from env, put into the process environment the way
// aion-exec reads them.
func Run(ctx context.Context, env map[string]string) ([]Step, error) {
	for k, v := range env {
		os.Setenv(k, v)
	}
	var steps []Step
	t := time.Now()
	lap := func(name string) {
		now := time.Now()
		steps = append(steps, Step{name, now.Sub(t)})
		t = now
	}
	cfg, _, err := config.Load("bench", nil, true)
	if err != nil {
		return nil, err
	}
	lap("config.Load")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	vc, err := vault.New(vault.Options{Addrs: cfg.VaultAddr.V, KVMount: cfg.KVMount.V, StartupTimeout: cfg.StartupTimeout.V,
		Auth: vault.AuthOptions{Method: cfg.AuthMethod.V, Token: cfg.Token.V}, Log: log})
	if err != nil {
		return nil, err
	}
	lap("vault.New")
	var refs []vault.Ref
	names := make([]string, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		for _, p := range s.Paths {
			refs = append(refs, vault.Ref{Name: s.Name, Path: p})
		}
		names[i] = s.Name
	}
	r := refresh.New(refresh.Options{Secrets: refs, Label: cfg.Env.V, RestartOn: cfg.RestartOn.V, HostFields: cfg.HostFields.V,
		Templates: render.Options{TemplatesDir: cfg.TemplatesDir.V, RenderDir: cfg.RenderDir.V, FileMode: cfg.FileMode.V, Secrets: names}}, vc)
	if err := r.Load(); err != nil {
		return nil, err
	}
	lap("refresh.Load (parse templates)")
	if _, err := vc.Login(ctx); err != nil {
		return nil, err
	}
	lap("Login (token lookup-self)")
	if _, err := r.Refresh(ctx, refresh.All); err != nil {
		return nil, err
	}
	lap("Refresh (mount listing, reads, render, files)")
	return steps, nil
}
