package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// Secret is one secret as read.
type Secret struct {
	Name      string         // "db"
	Path      string         // as configured, ${AION_ENV} expanded
	Mount     string         // "secret"
	Engine    string         // the mount's type: "kv", "database", "pki", ...
	KVVersion int            // 1 or 2; 0 for a secret outside every KV mount
	APIPath   string         // what was read: "secret/data/aionos/dev/db-main"
	Version   int            // KV v2 current version; 0 for v1
	Data      map[string]any // the payload; numbers are json.Number
	// Lease is what Vault gave a secret of another engine (database
	// credentials, a certificate) to live by; nil for KV, which is polled.
	Lease *Lease
}

// Keys returns the payload's key names, sorted; never the values.
func (s *Secret) Keys() []string {
	return slices.Sorted(maps.Keys(s.Data))
}

type mount struct {
	path    string // without trailing slash
	version int    // 1 or 2 for KV, else 0
	engine  string // the mount's type ("kv", "database", "pki"); "" for no mount
}

// kv says whether m is a KV mount; a mount of another engine holds leased
// secrets.
func (m mount) kv() bool { return m.version > 0 }

// mountCache holds the KV mounts this token can see, fetched once with one
// request (sys/internal/ui/mounts) and completed per path when that listing
// is refused, like `vault kv` does.
type mountCache struct {
	mu     sync.Mutex
	listed bool
	byPath map[string]mount // "secret" -> v2; a miss is cached as version 0
}

// maxParallel bounds concurrent reads: enough to hide latency for a service
// with a few dozen secrets, few enough not to burst a shared Vault.
const maxParallel = 8

// RevokeBound bounds giving back leases that nobody will use: a Vault
// that is away must not hold up a failure or an exit for long.
const RevokeBound = 5 * time.Second

// ReadAll reads every configured secret in parallel, one request each once
// the mounts are known. Until one succeeds, it waits for a Vault that is
// unreachable, sealed or rate limiting within AION_STARTUP_TIMEOUT. It returns every failure, not only the first, joined
// in configuration order; the exit code is the first failure's. A denial
// whose cause is a token that is gone (revoked, expired, Vault restored
// from an older snapshot) is not a denial: the client logs in again with
// the configured method and reads once more.
func (c *Client) ReadAll(ctx context.Context, secrets []Ref) ([]*Secret, error) {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		return c.readAgain(ctx, secrets)
	}
	// The first read is part of the start: a Vault that is sealed or
	// limiting is waited for within AION_STARTUP_TIMEOUT, as the login is.
	var out []*Secret
	err := c.retryStartup(ctx, "read secrets", func(ctx context.Context) error {
		var err error
		out, err = c.readAgain(ctx, secrets)
		return err
	})
	if err == nil {
		c.mu.Lock()
		c.started = true
		c.mu.Unlock()
	}
	return out, err
}

// readAgain reads, logging in again once when the token turns out gone.
func (c *Client) readAgain(ctx context.Context, secrets []Ref) ([]*Secret, error) {
	seen := c.generation()
	out, err := c.readAll(ctx, secrets)
	if sysexits.Code(err) != sysexits.NoPerm || !c.tokenGone(ctx) {
		return out, err
	}
	c.mu.Lock()
	first := !c.dead
	c.dead = true
	c.mu.Unlock()
	if first {
		c.log.Warn("vault token no longer valid; logging in again", "method", c.opts.Auth.Method)
	}
	if _, gen, err := c.loginOnce(ctx, seen); err != nil {
		return nil, err
	} else if gen != seen {
		select {
		case c.replaced <- struct{}{}:
		default:
		}
	}
	return c.readAll(ctx, secrets)
}

// tokenGone asks Vault about the token itself: a lookup-self that is
// refused means the token no longer exists; one that answers means the
// token lacks a policy, a real denial.
func (c *Client) tokenGone(ctx context.Context) bool {
	_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

func (c *Client) readAll(ctx context.Context, secrets []Ref) ([]*Secret, error) {
	if err := c.loadMounts(ctx, c.api); err != nil {
		return nil, err
	}
	out := make([]*Secret, len(secrets))
	errs := make([]error, len(secrets))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, s := range secrets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = c.Read(ctx, s)
		}()
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		if err != nil {
			first = err
			break
		}
	}
	if first != nil {
		// All or nothing: the caller keeps none of it, so the leases this
		// call obtained (new database users) would be left to expire
		// unused. Give them back now, with a bound of their own: the
		// failure may be ctx's end (AION_STARTUP_TIMEOUT, a stop).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RevokeBound)
		defer cancel()
		for _, s := range out {
			if s != nil && s.Lease != nil {
				_ = c.Revoke(rctx, s.Lease) // best effort: they expire anyway
			}
		}
		return nil, sysexits.Wrap(sysexits.Code(first), errors.Join(errs...))
	}
	return out, nil
}

// Read resolves and reads one secret.
func (c *Client) Read(ctx context.Context, s Ref) (*Secret, error) {
	path, query, _ := strings.Cut(s.Path, "?")
	m, rel, err := c.resolve(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read secret %s at %s: %w", s.Name, s.Path, err)
	}
	if !m.kv() {
		return c.readLeased(ctx, s, m, path, query)
	}
	out := &Secret{Name: s.Name, Path: s.Path, Mount: m.path, Engine: m.engine, KVVersion: m.version}
	if m.version == 2 {
		out.APIPath = m.path + "/data/" + rel
	} else {
		out.APIPath = m.path + "/" + rel
	}
	sec, err := c.api.Logical().ReadWithContext(ctx, out.APIPath)
	if err != nil {
		err = Fail(fmt.Sprintf("read secret %s at %s", s.Name, out.APIPath), err)
		if sysexits.Code(err) == sysexits.NoPerm {
			err = sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("%w: the token's policies lack \"read\" on %s", err, out.APIPath))
		}
		return nil, err
	}
	if sec == nil {
		return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("read secret %s at %s: no secret at this path", s.Name, out.APIPath))
	}
	if m.version == 1 {
		out.Data = sec.Data
		return out, nil
	}
	meta, _ := sec.Data["metadata"].(map[string]any)
	if v, ok := meta["version"].(json.Number); ok {
		n, _ := v.Int64()
		out.Version = int(n)
	}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		switch {
		case meta["destroyed"] == true:
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("read secret %s at %s: version %d is destroyed", s.Name, out.APIPath, out.Version))
		case meta["deletion_time"] != nil && meta["deletion_time"] != "":
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("read secret %s at %s: version %d was deleted at %v; undelete it or write a new version", s.Name, out.APIPath, out.Version, meta["deletion_time"]))
		}
		return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("read secret %s at %s: version %d holds no data", s.Name, out.APIPath, out.Version))
	}
	out.Data = data
	return out, nil
}

// resolve splits path into a KV mount and the path inside it. A path whose
// first segment is a KV mount is absolute (`kv/aionos/db-main`,
// `secret/data/aionos/dev/db-main`); any other path lives under the
// configured AION_VAULT_KV_MOUNT. The optional data/ after a v2 mount is
// dropped. Nested mounts (`team/kv`) are matched longest first.
func (c *Client) resolve(ctx context.Context, path string) (mount, string, error) {
	if m, rel, ok := c.mounts.match(path); ok {
		return m, m.rel(rel), nil
	}
	if !c.mounts.isListed() {
		// The listing was refused: ask about this path's first segment,
		// then about the configured mount, each answer cached.
		first, _, _ := strings.Cut(path, "/")
		if err := c.lookupMount(ctx, first); err != nil {
			return mount{}, "", err
		}
		if m, rel, ok := c.mounts.match(path); ok {
			return m, m.rel(rel), nil
		}
		if err := c.lookupMount(ctx, c.opts.KVMount); err != nil {
			return mount{}, "", err
		}
	}
	if m, rel, ok := c.mounts.match(c.opts.KVMount + "/" + path); ok {
		return m, m.rel(rel), nil
	}
	return mount{}, "", sysexits.Wrap(sysexits.Usage,
		fmt.Errorf("no KV mount %q is visible to this token (AION_VAULT_KV_MOUNT), and %q is not a mount either", c.opts.KVMount, firstSegment(path)))
}

// rel drops the optional data/ that a KV-v2 path may carry after its mount.
func (m mount) rel(rel string) string {
	if m.version == 2 {
		rel = strings.TrimPrefix(rel, "data/")
	}
	return rel
}

func firstSegment(p string) string { s, _, _ := strings.Cut(p, "/"); return s }

func (mc *mountCache) isListed() bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.listed
}

// match finds the longest known KV mount that prefixes path.
func (mc *mountCache) match(path string) (mount, string, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	var best mount
	var rel string
	for p, m := range mc.byPath {
		if m.engine == "" || len(p) <= len(best.path) {
			continue
		}
		if r, ok := strings.CutPrefix(path, p+"/"); ok && r != "" {
			best, rel = m, r
		}
	}
	return best, rel, best.path != ""
}

// put caches what path is: a mount of engine (KV of version), or, with
// engine "", no mount.
func (mc *mountCache) put(path string, version int, engine string) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.byPath == nil {
		mc.byPath = map[string]mount{}
	}
	if _, ok := mc.byPath[path]; !ok || engine != "" {
		mc.byPath[path] = mount{path: path, version: version, engine: engine}
	}
}

// loadMounts lists every mount the token may see, once per client, with the
// token of ac. A token without access to the listing falls back to per-path
// lookups.
func (c *Client) loadMounts(ctx context.Context, ac *api.Client) error {
	c.mounts.mu.Lock()
	done := c.mounts.listed || c.mounts.byPath != nil
	c.mounts.mu.Unlock()
	if done {
		return nil
	}
	sec, err := ac.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts")
	if err != nil {
		if Transient(err) {
			return Fail("list KV mounts", err)
		}
		c.mounts.put("", 0, "") // not listed; marks the cache as initialised
		return nil
	}
	c.mounts.mu.Lock()
	c.mounts.listed = true
	c.mounts.mu.Unlock()
	if sec == nil {
		return nil
	}
	secrets, _ := sec.Data["secret"].(map[string]any)
	for p, v := range secrets {
		info, _ := v.(map[string]any)
		c.mounts.put(strings.TrimSuffix(p, "/"), kvVersion(info), engineOf(info))
	}
	return nil
}

// lookupMount asks Vault which mount holds path, as `vault kv` does.
func (c *Client) lookupMount(ctx context.Context, path string) error {
	c.mounts.mu.Lock()
	_, known := c.mounts.byPath[path]
	c.mounts.mu.Unlock()
	if known {
		return nil
	}
	sec, err := c.api.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusNotFound) {
			c.mounts.put(path, 0, "")
			return nil
		}
		return Fail("look up the mount of "+path, err)
	}
	if sec == nil {
		c.mounts.put(path, 0, "")
		return nil
	}
	mp, _ := sec.Data["path"].(string)
	c.mounts.put(strings.TrimSuffix(mp, "/"), kvVersion(sec.Data), engineOf(sec.Data))
	if strings.TrimSuffix(mp, "/") != path {
		c.mounts.put(path, 0, "")
	}
	return nil
}

// engineOf is a mount description's type: "kv", "database", "pki", ...
func engineOf(info map[string]any) string {
	typ, _ := info["type"].(string)
	if typ == "" {
		typ = "unknown"
	}
	return typ
}

// kvVersion reads a mount description: 2 for KV v2, 1 for KV v1, 0 for a
// mount that is not KV (such as cubbyhole or transit).
func kvVersion(info map[string]any) int {
	typ, _ := info["type"].(string)
	if typ != "kv" && typ != "generic" {
		return 0
	}
	opts, _ := info["options"].(map[string]any)
	if v, _ := opts["version"].(string); v == "2" {
		return 2
	}
	return 1
}

// Ref names one secret to read: its name in the template data and its path
// as configured.
type Ref struct {
	Name string // "db"
	Path string // "aionos/dev/db-main", ${AION_ENV} expanded
}
