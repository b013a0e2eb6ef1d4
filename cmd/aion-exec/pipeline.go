package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// pipeline is env -> config -> login -> read -> render, shared by every
// command: each step fails before the next one starts, so no child starts
// and no file is written on partial secrets.
type pipeline struct {
	cfg   *config.Config
	log   *slog.Logger
	set   *render.Set
	vault *vault.Client
}

// start parses the templates (no network yet: a broken template fails
// fast), then logs in.
func start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*pipeline, error) {
	set, err := render.Load(renderOptions(cfg))
	if err != nil {
		return nil, err
	}
	vc, err := vault.New(cfg, log)
	if err != nil {
		return nil, err
	}
	if _, err := vc.Login(ctx); err != nil {
		return nil, err
	}
	return &pipeline{cfg: cfg, log: log, set: set, vault: vc}, nil
}

func renderOptions(cfg *config.Config) render.Options {
	names := make([]string, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		names[i] = s.Name
	}
	return render.Options{TemplatesDir: cfg.TemplatesDir, RenderDir: cfg.RenderDir, FileMode: cfg.FileMode, Secrets: names}
}

// read reads every secret and returns it as template data.
func (p *pipeline) read(ctx context.Context) (render.Data, error) {
	secrets, err := p.vault.ReadAll(ctx, p.cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return dataOf(p.cfg, secrets), nil
}

func dataOf(cfg *config.Config, secrets []*vault.Secret) render.Data {
	d := render.Data{"env": cfg.Env}
	for _, s := range secrets {
		d[s.Name] = s.Data
	}
	return d
}

// prepare runs every step before a child can start: templates, login, read,
// render, then the file outputs are written. Any failure stops it before
// anything is written.
func prepare(ctx context.Context, cfg *config.Config, log *slog.Logger) (*pipeline, render.Data, *render.Output, error) {
	t0 := time.Now()
	p, err := start(ctx, cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	data, err := p.read(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := p.set.Render(data)
	if err != nil {
		return nil, nil, nil, err
	}
	written, err := out.WriteFiles()
	if err != nil {
		return nil, nil, nil, err
	}
	log.Debug("rendered", "env", len(out.Env), "files", len(out.Files), "written", len(written),
		"dir", cfg.RenderDir, "took", time.Since(t0).Round(time.Microsecond))
	return p, data, out, nil
}

func once(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	_, _, out, err := prepare(ctx, cfg, log)
	if err == nil {
		log.Info("rendered", "files", len(out.Files), "dir", cfg.RenderDir)
	}
	return err
}

// printEnv prints the rendered environment as `export NAME='value'` lines
// that sh and bash eval back to the exact values. File outputs are written
// too, since variables such as AION_GATEWAY_API_KEYS_FILE name them.
func printEnv(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	_, _, out, err := prepare(ctx, cfg, log)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, kv := range out.Env {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", name, shellQuote(value))
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// shellQuote single-quotes s for POSIX shells: every byte is literal inside
// single quotes, and a quote is written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// check validates everything a start would, prints what it found, and never
// prints a secret value.
func check(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	w("vault    %s (namespace %q)", cfg.VaultAddr, cfg.Namespace)
	set, err := render.Load(renderOptions(cfg))
	if err != nil {
		w("templates ERROR %v", err)
		return err
	}
	vc, err := vault.New(cfg, log)
	if err != nil {
		return err
	}
	a, err := vc.Login(ctx)
	if err != nil {
		w("auth     %s ERROR %v", cfg.AuthMethod, err)
		return err
	}
	ttl := "never expires"
	if a.TTL > 0 {
		ttl = a.TTL.String()
	}
	w("auth     %s OK: ttl %s, renewable %t, policies [%s]", a.Method, ttl, a.Renewable, strings.Join(a.Policies, ","))

	var failed error
	var secrets []*vault.Secret
	for _, s := range cfg.Secrets {
		r, err := vc.Read(ctx, s)
		if err != nil {
			w("secret   %-18s %s ERROR %v", s.Name, s.Path, err)
			if failed == nil {
				failed = err
			}
			continue
		}
		ver := "kv-v1"
		if r.KVVersion == 2 {
			ver = fmt.Sprintf("kv-v2 version %d", r.Version)
		}
		w("secret   %-18s %s -> %s (mount %s, %s) keys [%s] OK", s.Name, s.Path, r.APIPath, r.Mount, ver, keyList(set, cfg, r.Keys()))
		secrets = append(secrets, r)
	}
	if len(cfg.Secrets) == 0 {
		w("secrets  none configured: set AION_<NAME>_SECRET_PATH")
	}
	for _, t := range set.Templates() {
		state := "active"
		if !t.Active {
			state = "inactive (secret not configured)"
		}
		w("template %-26s %-4s %-9s secrets [%s] %s", t.Name, t.Kind, t.Source, strings.Join(t.Secrets, ","), state)
	}
	if failed != nil {
		return sysexits.Wrap(sysexits.Code(failed), fmt.Errorf("check failed: %d of %d secrets unreadable", len(cfg.Secrets)-len(secrets), len(cfg.Secrets)))
	}
	if _, err := set.Render(dataOf(cfg, secrets)); err != nil {
		w("render   ERROR %v", err)
		return err
	}
	w("render   OK (nothing written)")
	return nil
}

// keyList names the keys that a template or AION_HOST_FIELDS names and
// counts the others: the keys of some secrets are secrets themselves
// (gateway API keys), so `check` must not print every key name.
func keyList(set *render.Set, cfg *config.Config, keys []string) string {
	var named []string
	hidden := 0
	for _, k := range keys {
		if set.Names(k) || slices.Contains(cfg.HostFields, k) {
			named = append(named, k)
		} else {
			hidden++
		}
	}
	if hidden > 0 {
		named = append(named, fmt.Sprintf("+%d not named by any template", hidden))
	}
	return strings.Join(named, ",")
}

// childEnv is the inherited environment, minus aion-exec's own Vault
// credentials unless passing them is asked for, plus the rendered variables
// (which win).
func childEnv(cfg *config.Config, environ, rendered []string) []string {
	drop := make(map[string]bool, len(rendered)+len(cfg.CredentialEnvVars))
	if !cfg.PassVaultCreds {
		for _, name := range cfg.CredentialEnvVars {
			drop[name] = true
		}
	}
	for _, kv := range rendered {
		name, _, _ := strings.Cut(kv, "=")
		drop[name] = true
	}
	out := make([]string, 0, len(environ)+len(rendered))
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); !drop[name] {
			out = append(out, kv)
		}
	}
	return append(out, rendered...)
}
