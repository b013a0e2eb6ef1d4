package main

import (
	"strings"

	"github.com/aionos/aion-exec/internal/atomicfile"
	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/vault"
	"golang.org/x/sys/unix"
)

// The settings, handed to each step as its own options: no package below
// cmd knows the settings table.

func vaultOptions(c *config.Config, a *app) vault.Options {
	return vault.Options{
		Addrs:     c.VaultAddr.V,
		Namespace: c.Namespace.V,
		TLS: vault.TLS{CACert: c.CACert.V, CAPath: c.CAPath.V, ClientCert: c.ClientCert.V, ClientKey: c.ClientKey.V,
			ServerName: c.ServerName.V, SkipVerify: c.SkipVerify.V},
		Auth: vault.AuthOptions{
			Method:       c.AuthMethod.V,
			Mount:        c.AuthMount.V,
			Role:         c.AuthRole.V,
			JWTFile:      c.JWTFile.V,
			Token:        c.Token.V,
			TokenFile:    c.TokenFile.V,
			RoleID:       c.RoleID.V,
			SecretID:     c.SecretID.V,
			SecretIDFile: c.SecretIDFile.V,
		},
		KVMount:        c.KVMount.V,
		StartupTimeout: c.StartupTimeout.V,
		Log:            a.log,
	}
}

func refreshOptions(c *config.Config, a *app) refresh.Options {
	var refs []vault.Ref
	names := make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		for _, p := range s.Paths {
			refs = append(refs, vault.Ref{Name: s.Name, Path: p})
		}
		names[i] = s.Name
	}
	o := refresh.Options{
		Secrets: refs,
		Label:   c.Env.V,
		Templates: render.Options{TemplatesDir: c.TemplatesDir.V, RenderDir: c.RenderDir.V,
			FileMode: c.FileMode.V, Secrets: names},
		HostFields: c.HostFields.V,
		RestartOn:  c.RestartOn.V,
		Interval:   c.PollInterval.V,
		ReloadName: unix.SignalName(c.ReloadSignal.V),
		Log:        a.log,
	}
	if a.user != nil {
		o.Owner = &atomicfile.Owner{UID: int(a.user.Uid), GID: int(a.user.Gid)}
	}
	if a.command != nil {
		// Never render what the kernel would refuse to exec: the first
		// render fails (65) before any fork, a later one keeps the last good.
		o.Check = func(env []string) error { return supervise.CheckArgSize(a.command, childEnv(c, a.environ, env)) }
	}
	return o
}

// concealed is what AION_MASK_OUTPUT hides in the child's output: every
// rendered variable's value (named by the variable), every string in the
// secrets (named secret.key) and every rendered file (named by the file),
// but not the paths of rendered files, which are no secret.
func concealed(d refresh.Decision) []supervise.Secret {
	var out []supervise.Secret
	paths := map[string]bool{}
	for _, f := range d.Output.Files {
		paths[f.Path] = true
		out = append(out, supervise.Secret{Name: f.Name, Value: string(f.Data)})
	}
	for _, kv := range d.Env {
		if name, value, _ := strings.Cut(kv, "="); !paths[value] {
			out = append(out, supervise.Secret{Name: name, Value: value})
		}
	}
	for name, secret := range d.Data {
		fields, _ := secret.(map[string]any)
		for key, v := range fields {
			if s, ok := v.(string); ok {
				out = append(out, supervise.Secret{Name: name + "." + key, Value: s})
			}
		}
	}
	return out
}

// childEnv is the inherited environment, minus aion-exec's own Vault
// credentials unless passing them is asked for, plus the rendered variables
// (which win).
func childEnv(c *config.Config, environ, rendered []string) []string {
	drop := make(map[string]bool, len(rendered)+len(config.CredentialVars))
	if !c.PassVaultCreds.V {
		for _, name := range config.CredentialVars {
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
