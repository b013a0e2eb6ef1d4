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
