package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeFromShell: LoadCompose names each variable compose would take
// from the user's shell, and only those.
func TestComposeFromShell(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ComposeDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	yml := `name: from-shell
services:
  s:
    image: busybox:1.37
    environment:
      FROM_SHELL: ${HOME}
      BARE: $$USER is $USER
      DEFAULTED: ${A:-a} ${B-b} ${C:-}
      LITERAL: $${AION_ENV}
`
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t, root)
	got := strings.Join(c.FromShell, "\n")
	for _, want := range []string{`"${HOME}": ${HOME} is taken`, `"$$USER is $USER": $USER is taken`} {
		if !strings.Contains(got, want) {
			t.Errorf("FromShell lacks %s:\n%s", want, got)
		}
	}
	if len(c.FromShell) != 2 {
		t.Errorf("FromShell has %d entries, want 2:\n%s", len(c.FromShell), got)
	}
	s, _ := c.Service("s")
	if env := Environment(s); env["LITERAL"] != "${AION_ENV}" || env["DEFAULTED"] != "a b " {
		t.Errorf("environment %v; want LITERAL=${AION_ENV} and DEFAULTED=\"a b \"", env)
	}
}
