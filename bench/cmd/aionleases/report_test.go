package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

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
