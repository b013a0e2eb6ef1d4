package main

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/aionos/aion-exec/bench/internal/golden"
)

// TestStoredResults: the run that wrote results/latest.json wrote
// latest.md from it; both come out again, byte for byte.
func TestStoredResults(t *testing.T) {
	const stored = "../../results/latest"
	var r Results
	if err := json.Unmarshal(golden.Read(t, stored+".json"), &r); err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, []byte(markdown(&r)), stored+".md")
	j, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, append(j, '\n'), stored+".json")
}

// TestMarkdownVariant renders the stored run changed where the report
// branches: the default policy, a quiet machine, errors, no consul-template
// and no propagation through Vault Agent.
func TestMarkdownVariant(t *testing.T) {
	var r Results
	if err := json.Unmarshal(golden.Read(t, "testdata/results.json"), &r); err != nil {
		t.Fatal(err)
	}
	r.DefaultPolicy, r.Machine.LoadStart, r.Machine.LoadEnd = true, 0.1, 0.2
	r.Errors = []string{"launch consul-template@5: exited\nits log: …", "supervise: x"}
	r.Launch = slices.DeleteFunc(r.Launch, func(l LaunchResult) bool { return l.Tool == "consul-template" })
	r.Tools = slices.DeleteFunc(r.Tools, func(i ToolInfo) bool { return i.Name == "consul-template" })
	r.Propagation = slices.DeleteFunc(r.Propagation, func(p Propagation) bool { return p.Tool == "vault-agent" })
	r.Supervise = slices.DeleteFunc(r.Supervise, func(s SuperviseResult) bool { return s.Tool == "aion-exec" && s.N == 5 })
	golden.Equal(t, []byte(markdown(&r)), "testdata/variant.md")
}
