package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/aionos/aion-exec/bench/internal/golden"
)

// TestStoredResults: render writes leases.md again from leases.json as the
// run wrote it, and writeResults writes leases.json back as it was.
func TestStoredResults(t *testing.T) {
	const stored = "../../results/leases"
	dir := t.TempDir()
	if err := render(stored+".json", dir); err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, golden.Read(t, filepath.Join(dir, "leases.md")), stored+".md")
	var r Result
	if err := json.Unmarshal(golden.Read(t, stored+".json"), &r); err != nil {
		t.Fatal(err)
	}
	if err := writeResults(dir, r); err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, golden.Read(t, filepath.Join(dir, "leases.json")), stored+".json")
}

// TestMarkdownVariant renders the stored run changed where the report
// branches: a tool without a whole cycle that exited early with errors and
// held an expired user, one whose child started with an unknown
// credential, one without rotations, a quiet machine, no versions, no
// lease end from Vault.
func TestMarkdownVariant(t *testing.T) {
	var r Result
	if err := json.Unmarshal(golden.Read(t, "testdata/results.json"), &r); err != nil {
		t.Fatal(err)
	}
	r.Machine.LoadStart, r.Settings.Versions = 1, nil
	ct, agent := &r.Tools[1], &r.Tools[2]
	ct.Cycle, ct.ExpiredHeld, ct.Exited = nil, true, "exited after 3s: exit status 1 (see x/log)"
	ct.Errors, ct.ErrorSamples = 2, []string{"update sys/leases/renew: lease not found", "read database/creds/app: 503"}
	ct.Holds[0].Expired, ct.Holds[0].Lead = true, -1500*time.Millisecond
	ct.Exit = Counts{Renew: 1, Other: 2, Total: 3}
	agent.ExpiredHeld, agent.MinHoldLead = true, nil
	for i := range agent.Holds {
		agent.Holds[i] = Hold{Unknown: true}
	}
	quiet := r.Tools[0]
	quiet.Name, quiet.MinHoldLead, quiet.Holds = "quiet", nil, nil
	r.Tools = append(r.Tools, quiet)
	for _, tr := range r.Tools {
		for _, c := range tr.Credentials {
			c.ExpiresFrom = "computed"
		}
	}
	golden.Equal(t, []byte(markdown(r)), "testdata/variant.md")
}
