package main

import (
	"strings"

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/vault"
	"golang.org/x/sys/unix"
)

// The settings, handed to each step as its own options: no package below
// cmd knows the settings table.

func vaultOptions(c *config.Config, a *app) vault.Options {
	return vault.Options{
		Addr:      c.VaultAddr.V,
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
	refs := make([]vault.Ref, len(c.Secrets))
	names := make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		refs[i], names[i] = vault.Ref{Name: s.Name, Path: s.Path}, s.Name
	}
	return refresh.Options{
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
