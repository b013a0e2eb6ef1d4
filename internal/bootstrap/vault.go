package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// bootstrapper carries one run's state from step to step.
type bootstrapper struct {
	opts Options
	sum  *Summary
	api  *api.Client // root token once unsealed

	roleIDs map[string]string // service -> AppRole role ID
	token   string            // the dev token, for the env file only
}

// requestTimeout bounds one HTTP request: a Vault that accepts connections
// and never answers must not hang a developer's terminal.
const requestTimeout = 15 * time.Second

func newBootstrapper(opts Options, sum *Summary) (*bootstrapper, error) {
	if opts.Addr == "" {
		return nil, sysexits.Wrap(sysexits.Usage, errors.New("bootstrap Vault: AION_VAULT_ADDR is not set"))
	}
	ac := &api.Config{
		Address:    opts.Addr,
		HttpClient: cleanhttp.DefaultPooledClient(),
		Timeout:    requestTimeout,
		// No SDK retries: sys/init must never be sent twice (the second
		// answer would lose the keys), and the wait loop retries itself.
		MaxRetries: 0,
	}
	if err := ac.ConfigureTLS(&api.TLSConfig{CACert: opts.CACert, CAPath: opts.CAPath}); err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("configure TLS from AION_VAULT_CACERT: %w", err))
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("create Vault client for %s: %w", opts.Addr, err))
	}
	// The SDK picks up VAULT_TOKEN, VAULT_NAMESPACE and VAULT_WRAP_TTL
	// from the process environment; only Options count here.
	c.ClearToken()
	c.SetHeaders(http.Header{})
	c.SetNamespace("")
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	return &bootstrapper{opts: opts, sum: sum, api: c, roleIDs: map[string]string{}}, nil
}

// fail wraps a Vault error with the operation and the exit code its kind
// deserves. The SDK's error text names method and URL and status; ours names
// the operation once and keeps only Vault's own messages.
func fail(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		code := sysexits.Unavailable
		switch {
		case re.StatusCode == http.StatusForbidden:
			msg, code = "permission denied", sysexits.NoPerm
		case re.StatusCode == http.StatusBadRequest:
			code = sysexits.Usage
		case re.StatusCode == http.StatusServiceUnavailable && (msg == "" || strings.Contains(msg, "sealed")):
			msg = "Vault is sealed"
		}
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return sysexits.Wrap(code, fmt.Errorf("%s: %s", op, msg))
	}
	if vault.Transient(err) {
		return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("%s: %w", op, unreachable(err)))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unreachable shortens a dial error to its cause ("connection refused").
func unreachable(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("cannot reach Vault: %w", oe.Err)
	}
	return err
}

// waitHealth polls sys/health until ready accepts the answer or ctx ends,
// logging once per change of state rather than once per attempt.
func (b *bootstrapper) waitHealth(ctx context.Context, what string, ready func(*api.HealthResponse) bool) (*api.HealthResponse, error) {
	bo := backoff.Backoff{Min: b.opts.pollMin, Max: 3 * time.Second}
	last := ""
	for {
		h, err := b.api.Sys().HealthWithContext(ctx)
		var state string
		switch {
		case err != nil && ctx.Err() != nil:
			// the deadline hit mid-request: keep the last state for the message
			state = last
		case err != nil:
			state = errState(err)
		default:
			state = healthState(h)
			if ready(h) {
				if last != "" && what != "answering" {
					b.opts.Log.Info("vault "+what, "addr", b.opts.Addr, "state", state)
				}
				return h, nil
			}
		}
		if state != last {
			b.opts.Log.Info("waiting for vault", "until", what, "addr", b.opts.Addr, "state", state, "timeout", b.opts.Timeout)
			last = state
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return nil, sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("wait for Vault at %s to be %s: %s (gave up after AION_VAULT_BOOTSTRAP_TIMEOUT=%s)",
					b.opts.Addr, what, last, b.opts.Timeout))
			}
			return nil, ctx.Err()
		case <-time.After(bo.Next()):
		}
	}
}

// errState is a failed health request in a few words for the log: the
// SDK's own text spans lines and repeats the URL.
func errState(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		if len(re.Errors) > 0 {
			return fmt.Sprintf("HTTP %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
		}
		return fmt.Sprintf("HTTP %d", re.StatusCode)
	}
	return unreachable(err).Error()
}

func healthState(h *api.HealthResponse) string {
	switch {
	case !h.Initialized:
		return "not initialised"
	case h.Sealed:
		return "sealed"
	case h.Standby:
		return "standby"
	}
	return "active"
}

// unsealFile is the JSON of `vault operator init -format=json`, which
// `jq -r '.unseal_keys_b64[0]'` and `vault operator unseal` understand.
// Keys and KeysBase64 read the file the Python script wrote (hvac's init
// answer); they are never written.
type unsealFile struct {
	UnsealKeysB64   []string `json:"unseal_keys_b64"`
	UnsealKeysHex   []string `json:"unseal_keys_hex"`
	UnsealShares    int      `json:"unseal_shares"`
	UnsealThreshold int      `json:"unseal_threshold"`
	RootToken       string   `json:"root_token"`

	Keys       []string `json:"keys,omitempty"`
	KeysBase64 []string `json:"keys_base64,omitempty"`
}

func (u *unsealFile) keys() []string {
	for _, k := range [][]string{u.UnsealKeysB64, u.KeysBase64, u.UnsealKeysHex, u.Keys} {
		if len(k) > 0 {
			return k
		}
	}
	return nil
}

// readUnsealFile returns (nil, nil) when the file does not exist.
func readUnsealFile(path string) (*unsealFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: %w", path, cause(err)))
	}
	var u unsealFile
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: not the JSON of `vault operator init`: %v", path, err))
	}
	if len(u.keys()) == 0 || u.RootToken == "" {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: it holds no unseal_keys_b64 or no root_token", path))
	}
	return &u, nil
}

// unseal brings Vault to an active, unsealed state and logs in with the
// root token: it initialises a new Vault (saving the key first thing),
// unseals a sealed one, and leaves an unsealed one alone.
func (b *bootstrapper) unseal(ctx context.Context) error {
	o := &b.opts
	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h, err := b.waitHealth(waitCtx, "answering", func(*api.HealthResponse) bool { return true })
	if err != nil {
		return err
	}
	o.Log.Info("vault answered", "addr", o.Addr, "state", healthState(h), "version", h.Version)
	path := o.unsealFile()
	saved, err := readUnsealFile(path)
	if err != nil {
		return err
	}

	if !h.Initialized {
		if saved, err = b.initialise(ctx, saved != nil); err != nil {
			return err
		}
		h.Sealed = true
	} else if saved == nil {
		if h.Sealed {
			return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("unseal Vault at %s: it is initialised and sealed, and its unseal key file %s does not exist; "+
				"unseal it by hand or reset its storage and run again", o.Addr, path))
		}
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("log in to Vault at %s: it is initialised, but %s, which holds the root token dev bootstrap needs, does not exist; "+
			"it was not initialised by dev bootstrap in this directory (run it where %s is, or reset the Vault storage)", o.Addr, path, path))
	} else {
		if err := b.keepPrivate(path); err != nil {
			return err
		}
		b.sum.add("vault", o.Addr, "initialised before (keys in "+path+")")
	}

	if h.Sealed {
		if err := b.submitKeys(ctx, saved, path); err != nil {
			return err
		}
	} else {
		b.sum.add("vault", o.Addr, "unsealed before")
	}
	if _, err := b.waitHealth(waitCtx, "active", func(h *api.HealthResponse) bool {
		return h.Initialized && !h.Sealed && !h.Standby
	}); err != nil {
		return err
	}

	b.api.SetToken(saved.RootToken)
	b.api.SetNamespace(o.Namespace)
	if _, err := b.api.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		err = fail("log in with the root token from "+path, err)
		if sysexits.Code(err) == sysexits.NoPerm {
			err = sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("log in with the root token from %s: Vault at %s does not know it; "+
				"the file belongs to another Vault (or the root token was revoked)", path, o.Addr))
		}
		return err
	}
	return nil
}

// keepPrivate restores modes 0700 and 0600 on the state directory and the
// unseal file if someone loosened them: they hold the root token.
func (b *bootstrapper) keepPrivate(path string) error {
	if st, err := os.Stat(b.opts.StateDir); err == nil && st.Mode().Perm() != 0o700 {
		b.opts.Log.Warn("state directory was accessible to others; restricting it to 0700", "dir", b.opts.StateDir, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		if err := ensurePrivateDir(b.opts.StateDir); err != nil {
			return err
		}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o600 {
		b.opts.Log.Warn("unseal file was accessible to others; restricting it to 0600", "file", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		if err := os.Chmod(path, 0o600); err != nil {
			return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("restrict unseal file %s to mode 0600: %w", path, cause(err)))
		}
	}
	return nil
}

// initialise runs sys/init with one key share and saves the answer before
// anything else can fail. The state directory is prepared first: keys that
// cannot be saved are keys lost.
func (b *bootstrapper) initialise(ctx context.Context, replacing bool) (*unsealFile, error) {
	o := &b.opts
	path := o.unsealFile()
	if err := ensurePrivateDir(o.StateDir); err != nil {
		return nil, err
	}
	if replacing {
		// Keys of a Vault whose storage is gone: useless, but not ours to
		// delete.
		old := path + ".old"
		if err := os.Rename(path, old); err != nil {
			return nil, sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("move the stale unseal file %s aside: %w", path, cause(err)))
		}
		o.Log.Warn("vault is not initialised but an unseal file exists; kept it as .old", "file", path, "old", old)
	}
	resp, err := b.api.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return nil, fail("initialise Vault at "+o.Addr, err)
	}
	u := &unsealFile{
		UnsealKeysB64: resp.KeysB64, UnsealKeysHex: resp.Keys,
		UnsealShares: 1, UnsealThreshold: 1, RootToken: resp.RootToken,
	}
	data, _ := json.MarshalIndent(u, "", "  ")
	if _, err := writeFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return nil, sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("save the unseal key and root token of the just-initialised Vault at %s: %w; "+
			"they are lost: reset its storage and run again", o.Addr, err))
	}
	o.Log.Info("initialised vault", "addr", o.Addr, "key_shares", 1, "file", path)
	b.sum.add("vault", o.Addr, "initialised (unseal key and root token in "+path+")")
	return u, nil
}

func (b *bootstrapper) submitKeys(ctx context.Context, u *unsealFile, path string) error {
	for _, k := range u.keys() {
		st, err := b.api.Sys().UnsealWithContext(ctx, k)
		if err != nil {
			err = fail("unseal Vault at "+b.opts.Addr+" with the key in "+path, err)
			return sysexits.Wrap(sysexits.Unavailable, err)
		}
		if !st.Sealed {
			b.opts.Log.Info("unsealed vault", "addr", b.opts.Addr)
			b.sum.add("vault", b.opts.Addr, "unsealed")
			return nil
		}
	}
	return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("unseal Vault at %s: still sealed after every key in %s; the keys belong to another Vault", b.opts.Addr, path))
}

// enableKV makes sure the KV mount exists and is version 2.
func (b *bootstrapper) enableKV(ctx context.Context) error {
	mount := b.opts.KVMount
	mounts, err := b.api.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fail("list secret engines", err)
	}
	if m, ok := mounts[mount+"/"]; ok {
		if err := checkKV2(mount, m); err != nil {
			return err
		}
		b.sum.add("mount", mount+"/ (kv-v2)", "present")
		return nil
	}
	err = b.api.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:        "kv",
		Description: "AION-OS secrets (aion-exec dev bootstrap)",
		Options:     map[string]string{"version": "2"},
	})
	if err != nil {
		return fail("enable the KV-v2 engine at "+mount+"/ (AION_VAULT_KV_MOUNT)", err)
	}
	b.opts.Log.Info("enabled kv-v2", "mount", mount)
	b.sum.add("mount", mount+"/ (kv-v2)", "created")
	return nil
}

func checkKV2(mount string, m *api.MountOutput) error {
	if m.Type != "kv" && m.Type != "generic" {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable KV v2 at %s/ (AION_VAULT_KV_MOUNT): a %s engine is mounted there; choose another mount", mount, m.Type))
	}
	if m.Options["version"] != "2" {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable KV v2 at %s/ (AION_VAULT_KV_MOUNT): a KV version 1 engine is mounted there; "+
			"run `vault kv enable-versioning %s/` or choose another mount", mount, mount))
	}
	return nil
}

// writePolicies writes every policy of policies/vault with the KV mount
// templated in, skipping those Vault already holds byte for byte.
func (b *bootstrapper) writePolicies(ctx context.Context) error {
	pols, err := policyTexts(b.opts.KVMount)
	if err != nil {
		return err
	}
	for _, p := range pols {
		old, err := b.api.Sys().GetPolicyWithContext(ctx, p.name)
		if err != nil {
			return fail("read policy "+p.name, err)
		}
		if old == p.text {
			b.sum.add("policy", p.name, "present")
			continue
		}
		if err := b.api.Sys().PutPolicyWithContext(ctx, p.name, p.text); err != nil {
			return fail("write policy "+p.name+" from policies/vault/"+p.name+".hcl", err)
		}
		result := "created"
		if old != "" {
			result = "updated"
		}
		b.opts.Log.Info("wrote policy", "policy", p.name, "result", result)
		b.sum.add("policy", p.name, result)
	}
	return nil
}

// enableAppRole makes sure the AppRole auth method is mounted.
func (b *bootstrapper) enableAppRole(ctx context.Context) error {
	mount := b.opts.AppRoleMount
	auths, err := b.api.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fail("list auth methods", err)
	}
	if m, ok := auths[mount+"/"]; ok {
		if m.Type != "approle" {
			return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable approle at auth/%s (AION_VAULT_APPROLE_MOUNT): a %s method is mounted there; choose another mount", mount, m.Type))
		}
		b.sum.add("auth", mount+"/ (approle)", "present")
		return nil
	}
	err = b.api.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{
		Type: "approle", Description: "AION-OS services (aion-exec dev bootstrap)",
	})
	if err != nil {
		return fail("enable the approle auth method at auth/"+mount, err)
	}
	b.opts.Log.Info("enabled approle", "mount", mount)
	b.sum.add("auth", mount+"/ (approle)", "created")
	return nil
}

// roleSettings are what each service's AppRole is held to. A login lasts an
// hour and renews up to a day; a secret ID is good for a day. A plain secret
// ID lets a service log in again after a restart; a wrapped one is spent by
// its first unwrap, and aion-exec keeps what it unwrapped to only for the
// life of the process, so a restarted service needs a new wrapped secret ID.
var roleSettings = map[string]any{
	"token_ttl":     "1h",
	"token_max_ttl": "24h",
	"secret_id_ttl": "24h",
}

// roleSeconds is roleSettings as Vault reads them back.
var roleSeconds = map[string]string{"token_ttl": "3600", "token_max_ttl": "86400", "secret_id_ttl": "86400"}

// writeRoles upserts one AppRole per service, only where it differs.
func (b *bootstrapper) writeRoles(ctx context.Context) error {
	for _, svc := range Services {
		path := "auth/" + b.opts.AppRoleMount + "/role/" + svc
		cur, err := b.api.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return fail("read AppRole "+path, err)
		}
		result := "present"
		if cur == nil || !roleMatches(cur.Data, svc) {
			data := map[string]any{"token_policies": []string{svc}}
			for k, v := range roleSettings {
				data[k] = v
			}
			if _, err := b.api.Logical().WriteWithContext(ctx, path, data); err != nil {
				return fail("write AppRole "+path, err)
			}
			result = "created"
			if cur != nil {
				result = "updated"
			}
			b.opts.Log.Info("wrote approle", "role", path, "policy", svc, "result", result)
		}
		id, err := b.api.Logical().ReadWithContext(ctx, path+"/role-id")
		if err != nil {
			return fail("read the role ID of AppRole "+path, err)
		}
		if id == nil || id.Data["role_id"] == nil {
			return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("read the role ID of AppRole %s: Vault returned none", path))
		}
		b.roleIDs[svc] = fmt.Sprint(id.Data["role_id"])
		b.sum.add("approle", svc, result)
	}
	return nil
}

func roleMatches(data map[string]any, svc string) bool {
	pols, _ := data["token_policies"].([]any)
	if len(pols) != 1 || pols[0] != svc {
		return false
	}
	for k, want := range roleSeconds {
		if fmt.Sprint(data[k]) != want {
			return false
		}
	}
	return true
}

// devTokenTTL is the dev token's lifetime between renewals; aion-exec renews
// it while it runs.
const devTokenTTL = "24h"

// devToken reuses the token of an existing env file while Vault still knows
// it with the dev policy, else creates an orphan token (so that it outlives
// whatever created it) with only that policy.
func (b *bootstrapper) devToken(ctx context.Context) error {
	if old := readEnvToken(b.opts.EnvFile); old != "" {
		s, err := b.api.Logical().WriteWithContext(ctx, "auth/token/lookup", map[string]any{"token": old})
		var re *api.ResponseError
		switch {
		case err == nil && s != nil:
			pols, _ := s.TokenPolicies()
			if slices.Contains(pols, DevPolicy) {
				b.token = old
				b.opts.Log.Info("reusing dev token", "file", b.opts.EnvFile)
				b.sum.add("token", DevPolicy, "present (from "+b.opts.EnvFile+")")
				return nil
			}
			b.opts.Log.Info("dev token in the env file lacks the dev policy; creating a new one", "file", b.opts.EnvFile)
		case errors.As(err, &re) && re.StatusCode < 500:
			b.opts.Log.Info("dev token in the env file is no longer valid; creating a new one", "file", b.opts.EnvFile)
		case err != nil:
			return fail("look up the dev token from "+b.opts.EnvFile, err)
		}
	}
	renewable := true
	s, err := b.api.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies:    []string{DevPolicy},
		TTL:         devTokenTTL,
		Renewable:   &renewable,
		DisplayName: DevPolicy,
		Metadata:    map[string]string{"created_by": "aion-exec dev bootstrap"},
	})
	if err != nil {
		return fail("create the dev token with policy "+DevPolicy, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return sysexits.Wrap(sysexits.Unavailable, errors.New("create the dev token: Vault returned no token"))
	}
	b.token = s.Auth.ClientToken
	b.opts.Log.Info("created dev token", "policy", DevPolicy, "ttl", devTokenTTL, "renewable", true, "accessor", s.Auth.Accessor)
	b.sum.add("token", DevPolicy, "created (ttl "+devTokenTTL+", renewable)")
	return nil
}
