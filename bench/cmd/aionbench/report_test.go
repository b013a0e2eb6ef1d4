package main

import (
	"encoding/json"
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
