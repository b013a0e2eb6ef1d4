package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// mountPath reports whether m is [A-Za-z0-9_.-]+ segments joined by "/".
func mountPath(m string) bool {
	for _, seg := range strings.Split(m, "/") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c == '_' || c == '.' || c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// validate normalises the values and checks them all, returning every
// problem found, each naming its variable (or flag).
func (c *Config) validate(needAuth bool, secretFlags *secretList) Problems {
	var p Problems
	each(c, func(f field) {
		if src, err := f.v.problem(); err != nil {
			p.add(orName(src, f.env), err.Error())
		}
	})
	c.vault(&p)
	if needAuth {
		c.auth(&p)
	}
	c.files(&p)
	c.Secrets = secrets(os.Environ(), secretFlags, c.Env.V, &p)
	c.timing(&p)
	c.choices(&p)
	if !c.RenderDir.Set() {
		c.RenderDir.V = "/run/aion-exec"
		if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
			c.RenderDir.V = filepath.Join(xdg, "aion-exec")
		}
	}
	if abs, err := filepath.Abs(c.RenderDir.V); err == nil {
		c.RenderDir.V = abs
	}
	return p
}

// name is where a setting came from for messages: the variable or flag
// that set it, else its own variable.
func name[T any](v *Var[T], env string) string { return orName(v.src, env) }

func orName(src, env string) string {
	if src != "" {
		return src
	}
	return env
}

func (c *Config) vault(p *Problems) {
	c.KVMount.V = strings.Trim(c.KVMount.V, "/")
	c.Namespace.V = strings.Trim(c.Namespace.V, "/")
	if len(c.VaultAddr.V) == 0 {
		p.add("AION_VAULT_ADDR", "is not set (nor VAULT_ADDR); set the Vault API URL, e.g. https://vault.internal:8200")
	}
	for i, addr := range c.VaultAddr.V {
		c.VaultAddr.V[i] = strings.TrimRight(addr, "/")
		if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
			p.add(name(&c.VaultAddr, "AION_VAULT_ADDR"), fmt.Sprintf("holds %q, which does not start with http:// or https://", addr))
		}
	}
	if !mountPath(c.KVMount.V) {
		p.add(name(&c.KVMount, "AION_VAULT_KV_MOUNT"), "must be a mount path such as secret or kv")
	}
}

func (c *Config) auth(p *Problems) {
	c.AuthMethod.V = strings.ToLower(c.AuthMethod.V)
	if c.AuthMethod.V == "" {
		c.AuthMethod.V = "token"
		if c.RoleID.V != "" {
			c.AuthMethod.V = "approle"
		}
	}
	method := c.AuthMethod.V
	if !slices.Contains(Methods, method) {
		p.add(name(&c.AuthMethod, "AION_VAULT_AUTH_METHOD"), fmt.Sprintf("is %q; want %s", method, orList(Methods)))
		return
	}
	c.mount(p)
	switch method {
	case "token":
		one(p, &c.Token, "AION_VAULT_TOKEN", &c.TokenFile, "AION_VAULT_TOKEN_FILE", "(nor VAULT_TOKEN, nor AION_VAULT_TOKEN_FILE) and token auth needs one")
	case "approle":
		if c.RoleID.V == "" {
			p.add("AION_VAULT_APPROLE_ROLE_ID", "is not set and approle auth needs it")
		}
		one(p, &c.SecretID, "AION_VAULT_APPROLE_SECRET_ID", &c.SecretIDFile, "AION_VAULT_APPROLE_SECRET_ID_FILE", "(nor AION_VAULT_APPROLE_SECRET_ID_FILE) and approle auth needs it")
	case "jwt", "kubernetes":
		if c.AuthRole.V == "" {
			p.add("AION_VAULT_AUTH_ROLE", "is not set and "+method+" auth needs the role to log in as")
		}
		if c.JWTFile.V == "" && method == "kubernetes" {
			c.JWTFile.V = KubernetesTokenFile
		}
		if c.JWTFile.V == "" {
			p.add("AION_VAULT_JWT_FILE", "is not set and jwt auth needs the file that holds the JWT")
		}
	case "cert":
		if c.ClientCert.V == "" {
			p.add("AION_VAULT_CLIENT_CERT", "is not set and cert auth logs in with the client certificate")
		}
	}
}

// mount is where the method is mounted: AION_VAULT_AUTH_MOUNT, for
// AppRole else its older alias AION_VAULT_APPROLE_MOUNT (whose default,
// approle, is the table's), else the method's own name.
func (c *Config) mount(p *Problems) {
	m, env := strings.Trim(c.AuthMount.V, "/"), name(&c.AuthMount, "AION_VAULT_AUTH_MOUNT")
	if alias := strings.Trim(c.AppRoleMount.V, "/"); c.AuthMethod.V == "approle" {
		switch {
		case m == "":
			m, env = alias, name(&c.AppRoleMount, "AION_VAULT_APPROLE_MOUNT")
		case c.AppRoleMount.Set() && alias != m:
			p.add(name(&c.AppRoleMount, "AION_VAULT_APPROLE_MOUNT"), "conflicts with AION_VAULT_AUTH_MOUNT; set one of them")
		}
	}
	if m == "" {
		m = c.AuthMethod.V
	}
	if !mountPath(m) {
		p.add(env, fmt.Sprintf("is %q; want an auth mount path such as %s", m, c.AuthMethod.V))
	}
	c.AuthMount.V = m
}

// one requires exactly one of a credential and the file that holds it.
func one(p *Problems, v *Var[string], env string, file *Var[string], fileEnv, missing string) {
	switch {
	case v.V == "" && file.V == "":
		p.add(env, "is not set "+missing)
	case v.V != "" && file.V != "":
		p.add(name(file, fileEnv), "conflicts with "+env+"; set one of them")
	}
}

// files checks that each file a setting names can be read now; credential
// files are read again at every login, TLS files when they change.
func (c *Config) files(p *Problems) {
	if (c.ClientCert.V == "") != (c.ClientKey.V == "") {
		// Named as set (a VAULT_* fallback, a flag): the user must find it.
		set, other := name(&c.ClientKey, "AION_VAULT_CLIENT_KEY"), "AION_VAULT_CLIENT_CERT"
		if c.ClientCert.V != "" {
			set, other = name(&c.ClientCert, "AION_VAULT_CLIENT_CERT"), "AION_VAULT_CLIENT_KEY"
		}
		p.add(set, "and "+other+" go together: set both or neither")
	}
	for _, f := range []struct {
		v   *Var[string]
		env string
	}{
		{&c.TokenFile, "AION_VAULT_TOKEN_FILE"},
		{&c.SecretIDFile, "AION_VAULT_APPROLE_SECRET_ID_FILE"},
		{&c.CACert, "AION_VAULT_CACERT"},
		{&c.CAPath, "AION_VAULT_CAPATH"},
		{&c.ClientCert, "AION_VAULT_CLIENT_CERT"},
		{&c.ClientKey, "AION_VAULT_CLIENT_KEY"},
		{&c.JWTFile, "AION_VAULT_JWT_FILE"},
	} {
		if f.v.V == "" {
			continue
		}
		if _, err := os.Stat(f.v.V); err != nil {
			p.add(name(f.v, f.env), fmt.Sprintf("names %s, which cannot be read: %v", f.v.V, errors.Unwrap(err)))
		}
	}
}

func (c *Config) timing(p *Problems) {
	for _, d := range []struct {
		v   *Var[time.Duration]
		env string
	}{
		{&c.StartupTimeout, "AION_STARTUP_TIMEOUT"},
		{&c.BootstrapTimeout, "AION_VAULT_BOOTSTRAP_TIMEOUT"},
		{&c.PollInterval, "AION_POLL_INTERVAL"},
	} {
		if d.v.V == 0 && d.v.err == nil {
			p.add(name(d.v, d.env), "is 0; want a positive duration")
		}
	}
	if c.PollInterval.V > 0 && c.PollInterval.V < 100*time.Millisecond {
		p.add(name(&c.PollInterval, "AION_POLL_INTERVAL"), "must be at least 100ms; every poll reads every secret from Vault")
	}
}

// choices checks the settings that take one of a few words.
func (c *Config) choices(p *Problems) {
	for _, ch := range []struct {
		v    *Var[string]
		env  string
		want []string
	}{
		{&c.RestartOn, "AION_RESTART_ON", []string{RestartHost, RestartEnv, RestartNever}},
		{&c.LogFormat, "AION_LOG_FORMAT", []string{"text", "json"}},
		{&c.LogLevel, "AION_LOG_LEVEL", []string{"debug", "info", "warn", "error"}},
	} {
		ch.v.V = strings.ToLower(ch.v.V)
		if !slices.Contains(ch.want, ch.v.V) {
			p.add(name(ch.v, ch.env), fmt.Sprintf("is %q; want %s", ch.v.V, orList(ch.want)))
		}
	}
	if c.StopSignal.V == 0 && c.StopSignal.err == nil {
		p.add(name(&c.StopSignal, "AION_STOP_SIGNAL"), `is "none"; want a signal name such as SIGTERM`)
	}
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
