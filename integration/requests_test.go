//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// auditRequest is one request in Vault's file audit log.
type auditRequest struct {
	Accessor string         // of the token that made it
	Path     string         // "database/creds/app"
	Data     map[string]any // the body, secrets HMACed
}

// auditRequests lists, in order, the requests Vault's file audit device
// logged.
func auditRequests(t *testing.T, log string) []auditRequest {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Type string `json:"type"`
			Auth struct {
				Accessor string `json:"accessor"`
			} `json:"auth"`
			Request struct {
				Path string         `json:"path"`
				Data map[string]any `json:"data"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "request" {
			out = append(out, auditRequest{e.Auth.Accessor, e.Request.Path, e.Request.Data})
		}
	}
	return out
}

// auditPaths lists, in order, the request paths logged for the token with
// accessor.
func auditPaths(t *testing.T, log, accessor string) []string {
	t.Helper()
	var paths []string
	for _, r := range auditRequests(t, log) {
		if r.Accessor == accessor {
			paths = append(paths, r.Path)
		}
	}
	return paths
}

// auditCount counts the requests to path, of any token.
func auditCount(t *testing.T, log, path string) int {
	t.Helper()
	n := 0
	for _, r := range auditRequests(t, log) {
		if r.Path == path {
			n++
		}
	}
	return n
}

// TestFrugalWithVault: a start costs one token lookup, one mount listing and
// one read per secret; each poll after that exactly one read per secret.
func TestFrugalWithVault(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	log := filepath.Join(t.TempDir(), "audit.log")
	if err := v.Root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": log, "hmac_accessor": "false"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"svc"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	env := tokenEnv(v, tok.Auth.ClientToken)
	for i := 1; i <= 5; i++ {
		v.KVPut("secret", fmt.Sprintf("aionos/dev/s%d", i), map[string]any{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
		env = append(env, fmt.Sprintf("AION_S%d_SECRET_PATH=aionos/dev/s%d", i, i))
	}
	env = append(env, "AION_POLL_INTERVAL=500ms", "AION_RENDER_DIR="+t.TempDir())
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	for range 3 {
		r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	}
	// The first poll comes at a random point of the first interval, so it
	// may be logged before the child says ready: split the audit log by its
	// shape, not by when it was read. The start pass ends before any poll.
	paths := auditPaths(t, log, tok.Auth.Accessor)
	want := []string{"auth/token/lookup-self", "secret/data/aionos/dev/s1", "secret/data/aionos/dev/s2", "secret/data/aionos/dev/s3",
		"secret/data/aionos/dev/s4", "secret/data/aionos/dev/s5", "sys/internal/ui/mounts"}
	if len(paths) < len(want) || !slices.Equal(slices.Sorted(slices.Values(paths[:len(want)])), want) {
		t.Fatalf("requests at start, want 7 (lookup-self, mounts, 5 reads):\n%s", strings.Join(paths, "\n"))
	}
	reads := want[1:6]
	polls := 0
	for after := paths[len(want):]; len(after) > 0; after = after[min(len(after), len(reads)):] {
		poll := after[:min(len(after), len(reads))]
		sorted := slices.Sorted(slices.Values(poll))
		if len(poll) == len(reads) && slices.Equal(sorted, reads) {
			polls++
			continue
		}
		// Only the last poll may still be under way as the log is read.
		if len(poll) == len(reads) || len(slices.Compact(sorted)) != len(poll) || !isSubset(poll, reads) {
			t.Fatalf("a poll made other requests than one read per secret:\n%s", strings.Join(paths[len(want):], "\n"))
		}
	}
	if polls < 3 {
		t.Errorf("%d whole polls in the audit log after 3 were logged, want at least 3:\n%s", polls, strings.Join(paths[len(want):], "\n"))
	}
}

func isSubset(sub, of []string) bool {
	for _, s := range sub {
		if !slices.Contains(of, s) {
			return false
		}
	}
	return true
}
