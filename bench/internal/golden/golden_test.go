package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorder keeps what Equal reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

func TestEqualNamesTheFirstLineThatDiffers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "want.md")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  string
		errs int
	}{{"a\nb\nc\n", 0}, {"a\nB\nc\n", 1}, {"a\nb\n", 1}} {
		r := &recorder{TB: t}
		Equal(r, []byte(c.got), path)
		if len(r.errs) != c.errs {
			t.Errorf("Equal(%q) reported %q, want %d errors", c.got, r.errs, c.errs)
		}
	}
}
