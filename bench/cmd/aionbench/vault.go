package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// vaultAPI is kit.Vault: the little of Vault's HTTP API the benchmark needs.
type vaultAPI = kit.Vault

// waitHealthy waits for an unsealed, active Vault.
func waitHealthy(ctx context.Context, v *vaultAPI, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", v.Addr+"/v1/sys/health", nil)
		resp, err := v.HC.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vault at %s not healthy after %s", v.Addr, timeout)
}

// benchPolicy is least privilege for every tool: read the bench secrets,
// look up and renew its own token. sys/internal/ui/mounts needs no grant.
const benchPolicy = `
path "secret/data/bench/*" { capabilities = ["read"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
`

// setupVault writes the policy and seeds max secrets of five fields each.
func setupVault(ctx context.Context, v *vaultAPI, max int) error {
	if err := v.Do(ctx, "PUT", "sys/policies/acl/bench", map[string]string{"policy": benchPolicy}, nil); err != nil {
		return err
	}
	for i := 1; i <= max; i++ {
		if err := writeSecret(ctx, v, i); err != nil {
			return err
		}
	}
	return nil
}

// tokenFor returns the token of one tool at one size, made on first use: a
// scoped, renewable token, what a service would really hold rather than the
// root token. Each has its own display name, which the audit log shows, so
// requests are counted per tool even while several tools run at once.
//
// A token gets Vault's "default" policy only with -default-policy: that policy
// is templated, and Vault 1.19 parses a templated policy's HCL again on
// every request (vault.parseACLPolicyWithTemplating was 41% of Vault's CPU
// in a profile), which makes each request cost about 1 ms more on a small
// machine and drowns what the wrappers themselves cost.
func (b *bench) tokenFor(tool string, n int) (string, error) {
	name := displayName(tool, n)
	b.mu.Lock()
	tok, ok := b.tokens[name]
	b.mu.Unlock()
	if ok {
		return tok, nil
	}
	tok, err := b.vault.CreateToken(context.Background(), kit.Token{Policy: "bench", TTL: "24h", DisplayName: name, DefaultPolicy: b.withDefault})
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.tokens[name] = tok
	b.mu.Unlock()
	return tok, nil
}

// displayName is a token's display name; Vault logs it as "token-" + it.
func displayName(tool string, n int) string { return fmt.Sprintf("bench-%s-%d", tool, n) }

// writeSecret writes secret i with five fresh random fields.
func writeSecret(ctx context.Context, v *vaultAPI, i int) error {
	_, err := v.WriteSecret(ctx, "secret/data/bench/"+kit.SecretName(i))
	return err
}

// setAudit enables or disables the file audit device at b.audit.path.
func (b *bench) setAudit(ctx context.Context, on bool) error {
	if !on {
		return b.vault.Do(ctx, "DELETE", "sys/audit/file", nil, nil)
	}
	return b.vault.Do(ctx, "PUT", "sys/audit/file", map[string]any{
		"type": "file", "options": map[string]string{"file_path": b.audit.path},
	}, nil)
}

// auditEntry is the part of a file audit device line we count.
type auditEntry = kit.AuditEntry

// only keeps the entries made with the token of display name name.
func only(es []auditEntry, name string) []auditEntry {
	var out []auditEntry
	for _, e := range es {
		if e.Who() == name {
			out = append(out, e)
		}
	}
	return out
}

// auditLog reads the audit device's file from byte offsets, so a run counts
// only the requests made while it ran.
type auditLog struct{ path string }

func (a auditLog) size() int64 {
	fi, err := os.Stat(a.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// requests returns the request and response entries from offset on.
func (a auditLog) requests(offset int64) ([]auditEntry, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return kit.Exchanges(f)
}

var secretSuffix = regexp.MustCompile(`/s[0-9]{3}$`)

// pathClass folds the per-secret part of a path, so that 100 reads show
// as one line: secret/data/bench/s042 -> secret/data/bench/*.
func pathClass(e auditEntry) string {
	return e.Request.Operation + " " + secretSuffix.ReplaceAllString(e.Request.Path, "/*")
}

// countBetween counts request entries in [from, to] by path class.
func countBetween(es []auditEntry, from, to time.Time) (int, map[string]int) {
	by := map[string]int{}
	n := 0
	for _, e := range es {
		if e.Type != "request" || e.Time.Before(from) || e.Time.After(to) {
			continue
		}
		n++
		by[pathClass(e)]++
	}
	return n, by
}

// readTimes returns when the given secret path was read, sorted.
func readTimes(es []auditEntry, path string) []time.Time {
	var ts []time.Time
	for _, e := range es {
		if e.Type == "request" && e.Request.Path == path && e.Request.Operation == "read" {
			ts = append(ts, e.Time)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	return ts
}

// vaultSpan is when Vault got the first request in [from, to] and when it
// answered the last one.
func vaultSpan(es []auditEntry, from, to time.Time) (first, last time.Time) {
	for _, e := range es {
		if e.Time.Before(from) || e.Time.After(to) {
			continue
		}
		if e.Type == "request" && (first.IsZero() || e.Time.Before(first)) {
			first = e.Time
		}
		if e.Type == "response" && e.Time.After(last) {
			last = e.Time
		}
	}
	return first, last
}
