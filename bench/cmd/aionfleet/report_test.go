package main

import (
	"encoding/json"
	"testing"

	"github.com/aionos/aion-exec/bench/internal/golden"
)

// TestStoredResults: fleet.md is what the report made of fleet.json, and
// fleet.json reads and writes back as it is.
func TestStoredResults(t *testing.T) {
	const stored = "../../results/fleet"
	r, err := readResults(stored + ".json")
	if err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, []byte(markdown(r)), stored+".md")
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, append(j, '\n'), stored+".json")
}

// TestMarkdownVariant renders the stored run changed where the report
// branches: other runs to summarise, early exits, errors, a second after
// the recovery without requests.
func TestMarkdownVariant(t *testing.T) {
	r, err := readResults("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	r.Repeats = []Repeat{repeatOf(r), repeatOf(r)}
	r.Integrity.EarlyExitCount = 3
	r.Integrity.EarlyExits = []EarlyExit{{Instance: "fleet-0007", Code: 69, AfterLaunchS: 1.5, LogTail: "level=INFO\nlevel=ERROR msg=`vault` down"}}
	r.Errors = []string{"launch fleet-0009: fork", "no fleet request reached Vault after the outage"}
	r.Outage.LatencyMsBySecond[1] = Stats{}
	golden.Equal(t, []byte(markdown(r)), "testdata/variant.md")
	r.Outage.FirstRequestBySecond = nil // no reading of the recovery
	golden.Equal(t, []byte(markdown(r)), "testdata/variant-no-herd.md")
}
