package check

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// The example directories, relative to the repository.
const (
	ComposeDir = "examples/compose"
	KubeDir    = "examples/kubernetes"
)

// mainModuleRE is the line of the repository's own go.mod.
var mainModuleRE = regexp.MustCompile(`(?m)^module\s+github\.com/aionos/aion-exec\s*$`)

// Root finds the repository's checkout: the nearest directory, from dir
// upwards, whose go.mod is the main module's.
func Root(dir string) (string, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	for d := start; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && mainModuleRE.Match(b) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find the repository: no go.mod of github.com/aionos/aion-exec in %s or above", start)
		}
	}
}

// Rel names p relative to root, for messages.
func Rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}
