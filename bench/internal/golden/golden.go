// Package golden is for tests: it compares what a test made with a file
// kept in the repository, such as a stored benchmark report. It only ever
// writes that file when the test is run with -update.
package golden

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "write the golden files from the code as it is")

// Read returns the file at path, or fails the test.
func Read(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Equal fails the test unless got is the file at path byte for byte, and
// names the first line that differs; with -update it writes got there.
func Equal(tb testing.TB, got []byte, path string) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want := Read(tb, path)
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			tb.Errorf("%s differs at line %d:\ngot  %q\nwant %q", path, i+1, g[i], w[i])
			return
		}
	}
	tb.Errorf("%s differs: %d lines, want %d", path, len(g), len(w))
}
