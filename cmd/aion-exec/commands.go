package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/internal/bootstrap"
	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/shell"
	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// prepare is config → login → read → render → write, shared by every
// command that renders: templates first (no network yet: a broken template
// fails fast), then the login, then the first refresh pass. Each step
// fails before the next one starts, so no file is written and no child
// starts on partial secrets.
func (a *app) prepare(ctx context.Context) (*vault.Client, *refresh.Refresher, refresh.Decision, error) {
	t0 := time.Now()
	if spec := a.cfg.ChildUser.V; spec != "" {
		// Rendered files go to the service's user, in the supervised run
		// and for an init container's `once` alike.
		u, err := supervise.LookupUser(spec)
		if err != nil {
			return nil, nil, refresh.Decision{}, sysexits.Wrap(sysexits.Code(err), fmt.Errorf("AION_CHILD_USER: %w", err))
		}
		if err := reachable(a.cfg.RenderDir.V, u); err != nil {
			return nil, nil, refresh.Decision{}, err
		}
		a.user = u
	}
	vc, err := vault.New(vaultOptions(a.cfg, a))
	if err != nil {
		return nil, nil, refresh.Decision{}, err
	}
	opts := refreshOptions(a.cfg, a)
	opts.Relogins = vc.Relogins()
	r := refresh.New(opts, vc)
	if err := r.Load(); err != nil {
		return nil, nil, refresh.Decision{}, err
	}
	if _, err := vc.Login(ctx); err != nil {
		return nil, nil, refresh.Decision{}, err
	}
	// The templates were loaded above: the first pass reads, it does not parse again.
	d, err := r.Refresh(ctx, refresh.Due{Static: true})
	if err != nil {
		// Nothing was made of what was read: give its leases back rather
		// than leave database users behind until their TTL.
		giveBack(ctx, r)
		return nil, nil, refresh.Decision{}, err
	}
	a.log.Debug("rendered", "env", len(d.Env), "files", len(d.Output.Files), "dir", a.cfg.RenderDir.V,
		"took", time.Since(t0).Round(time.Microsecond))
	if a.command != nil {
		// Only a supervised child lives on through rotations; the outputs
		// of once and env are taken as they are.
		r.WarnLeasedEnv()
	}
	return vc, r, d, nil
}

// reachable checks that user can get to dir: every directory above it
// must let the user through (x), or the child meets EACCES on its own
// rendered files. dir itself is made and handed to the user later.
func reachable(dir string, u *supervise.User) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			mode := fi.Mode().Perm()
			ok := mode&0o001 != 0 || st.Uid == u.Uid && mode&0o100 != 0 ||
				(st.Gid == u.Gid || slices.Contains(u.Groups, st.Gid)) && mode&0o010 != 0
			if !ok {
				return sysexits.Wrap(sysexits.Usage, fmt.Errorf("AION_RENDER_DIR %s: AION_CHILD_USER %s cannot reach it: %s is mode %04o, owned by %d:%d",
					dir, u, p, mode, st.Uid, st.Gid))
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a *app) once(ctx context.Context) error {
	_, _, d, err := a.prepare(ctx)
	if err == nil {
		a.log.Info("rendered", "files", len(d.Output.Files), "dir", a.cfg.RenderDir.V)
	}
	return err
}

// printEnv prints the rendered environment as `export NAME='value'` lines
// that sh and bash eval back to the exact values. File outputs are written
// too, since variables such as AION_GATEWAY_API_KEYS_FILE name them.
func (a *app) printEnv(ctx context.Context) error {
	_, _, d, err := a.prepare(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, kv := range d.Env {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", name, shell.Quote(value))
	}
	_, err = io.WriteString(a.st.stdout, b.String())
	return err
}

// check validates everything a start would, prints what it found, and never
// prints a secret value.
func (a *app) check(ctx context.Context) error {
	cfg := a.cfg
	w := func(format string, args ...any) { fmt.Fprintf(a.st.stdout, format+"\n", args...) }
	vc, err := vault.New(vaultOptions(cfg, a))
	if err != nil {
		return err
	}
	r := refresh.New(refreshOptions(cfg, a), vc)
	if err := r.Load(); err != nil {
		w("templates ERROR %v", err)
		return err
	}
	method := cfg.AuthMethod.V
	if method != "token" {
		method += " at auth/" + cfg.AuthMount.V
	}
	if cfg.AuthRole.V != "" {
		method += " as role " + cfg.AuthRole.V
	}
	au, err := vc.Login(ctx)
	a.checkVault(ctx, vc, w)
	a.checkTLS(vc, w)
	if err != nil {
		w("auth     %s ERROR %v", method, err)
		return err
	}
	ttl := "never expires"
	if au.TTL > 0 {
		ttl = au.TTL.String()
	}
	w("auth     %s OK: ttl %s, renewable %t, policies [%s]", method, ttl, au.Renewable, strings.Join(au.Policies, ","))
	data, failed, first := a.checkSecrets(ctx, vc, r.Set(), w)
	for _, t := range r.Set().Templates() {
		state := "active"
		if !t.Active {
			state = "inactive (secret not configured)"
		}
		w("template %-26s %-4s %-9s secrets [%s] %s", t.Name, t.Kind, t.Source, strings.Join(t.Secrets, ","), state)
	}
	if failed > 0 {
		return sysexits.Wrap(sysexits.Code(first), fmt.Errorf("check failed: %d of %d secrets unreadable", failed, len(cfg.Secrets)))
	}
	if _, err := r.Set().Render(data); err != nil {
		w("render   ERROR %v", err)
		return err
	}
	w("render   OK (nothing written)")
	return nil
}

// checkVault prints which address answered, and what Vault says of
// itself there: HA state, version, cluster.
func (a *app) checkVault(ctx context.Context, vc *vault.Client, w func(string, ...any)) {
	addr := vc.Addr()
	others := ""
	if n := len(a.cfg.VaultAddr.V); n > 1 {
		others = fmt.Sprintf(" (%d addresses)", n)
	}
	h, err := vc.API().Sys().HealthWithContext(ctx)
	if err != nil {
		w("vault    %s%s answered; health unknown: %v (namespace %q)", addr, others, vault.Cause(err), a.cfg.Namespace.V)
		return
	}
	state := "active"
	switch {
	case h.Sealed:
		state = "sealed"
	case h.PerformanceStandby:
		state = "performance standby"
	case h.Standby:
		state = "standby, forwarding to the active node"
	}
	w("vault    %s%s answered: %s, version %s, cluster %q (namespace %q)", addr, others, state, h.Version, h.ClusterName, a.cfg.Namespace.V)
}

// checkTLS prints what Vault's certificate says: who it is, who signed
// it, and how long it has left.
func (a *app) checkTLS(vc *vault.Client, w func(string, ...any)) {
	c := vc.ServerCertificate()
	switch {
	case c == nil && strings.HasPrefix(vc.Addr(), "http://"):
		w("tls      none: plain HTTP")
	case c != nil:
		verified := "verified"
		if a.cfg.SkipVerify.V {
			verified = "NOT verified (AION_VAULT_SKIP_VERIFY)"
		}
		w("tls      %s: subject %q, issuer %q, expires %s (%d days)", verified, c.Subject.CommonName, c.Issuer.CommonName,
			c.NotAfter.UTC().Format(time.RFC3339), int(time.Until(c.NotAfter).Hours()/24))
	}
}

// checkSecrets reads every secret and prints what it found: path, mount,
// version or lease, and the key names a template names, never a value. A
// leased secret read here is revoked at once: check must not leave
// database users behind.
func (a *app) checkSecrets(ctx context.Context, vc *vault.Client, set *render.Set, w func(string, ...any)) (render.Data, int, error) {
	data := render.Data{render.EnvKey: a.cfg.Env.V}
	failed := 0
	var first error
	for _, s := range a.cfg.Secrets {
		merged := map[string]any{}
		for _, path := range s.Paths {
			sec, err := vc.Read(ctx, vault.Ref{Name: s.Name, Path: path})
			if err != nil {
				w("secret   %-18s %s ERROR %v", s.Name, path, err)
				if failed++; first == nil {
					first = err
				}
				continue
			}
			w("secret   %-18s %s -> %s (%s) keys [%s] OK", s.Name, path, sec.APIPath, a.checkKind(ctx, vc, sec), a.keyList(set, sec.Keys()))
			maps.Copy(merged, sec.Data)
		}
		data[s.Name] = merged
	}
	if len(a.cfg.Secrets) == 0 {
		w("secrets  none configured: set AION_<NAME>_SECRET_PATH")
	}
	return data, failed, first
}

// checkKind describes where a secret lives and how long it lasts.
func (a *app) checkKind(ctx context.Context, vc *vault.Client, sec *vault.Secret) string {
	l := sec.Lease
	switch {
	case sec.KVVersion == 2:
		return fmt.Sprintf("mount %s, kv-v2 version %d", sec.Mount, sec.Version)
	case sec.KVVersion == 1:
		return fmt.Sprintf("mount %s, kv-v1", sec.Mount)
	case l == nil:
		return fmt.Sprintf("mount %s, %s, no lease: polled", sec.Mount, sec.Engine)
	case l.ID == "":
		return fmt.Sprintf("mount %s, %s, certificate %s, valid %s to %s", sec.Mount, sec.Engine, certNames(sec.Data),
			l.NotBefore.UTC().Format(time.RFC3339), l.NotAfter.UTC().Format(time.RFC3339))
	}
	revoked := "revoked again"
	if err := vc.Revoke(ctx, l); err != nil {
		revoked = "NOT revoked: " + err.Error()
	}
	return fmt.Sprintf("mount %s, %s, lease %s, renewable %t, %s", sec.Mount, sec.Engine, l.Duration, l.Renewable, revoked)
}

// certNames is who a secret's certificate is for: its subject and its
// subject alternative names, as `subject "CN=web.internal", SANs
// [DNS:web.internal IP:127.0.0.1]`. Neither is a secret.
func certNames(data map[string]any) string {
	pemText, _ := data["certificate"].(string)
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return "unreadable"
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "unreadable"
	}
	var sans []string
	for _, n := range c.DNSNames {
		sans = append(sans, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	return fmt.Sprintf("subject %q, SANs [%s]", c.Subject.String(), strings.Join(sans, " "))
}

// keyList names the keys that a template or AION_HOST_FIELDS names and
// counts the others: the keys of some secrets are secrets themselves
// (gateway API keys), so `check` must not print every key name.
func (a *app) keyList(set *render.Set, keys []string) string {
	var named []string
	hidden := 0
	for _, k := range keys {
		if set.Names(k) || slices.Contains(a.cfg.HostFields.V, k) {
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

// devBootstrap prepares the local Vault at AION_VAULT_ADDR for development
// and prints what it created and what was already there, even when it
// fails half-way. The state directory and the env file are the Python
// script's: .vault/ and .env.vault.dev in the current directory.
func (a *app) devBootstrap(ctx context.Context) error {
	cfg := a.cfg
	if cfg.Env.V != "" && cfg.Env.V != bootstrap.Env {
		a.log.Warn("dev bootstrap seeds the dev deployment whatever AION_ENV says", "AION_ENV", cfg.Env.V, "seeds", bootstrap.SecretPrefix)
	}
	sum, err := bootstrap.Run(ctx, bootstrap.Options{
		Addr:         cfg.VaultAddr.V[0],
		KVMount:      cfg.KVMount.V,
		AppRoleMount: cfg.AppRoleMount.V,
		Namespace:    cfg.Namespace.V,
		TLS:          vaultOptions(cfg, a).TLS,
		Timeout:      cfg.BootstrapTimeout.V,
		Log:          a.log,
	})
	if _, werr := sum.WriteTo(a.st.stdout); err == nil {
		err = werr
	}
	return err
}
