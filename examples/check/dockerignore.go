package check

import (
	"fmt"
	"os"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Dockerignore is a .dockerignore file as the builder reads it.
type Dockerignore struct {
	path string
	pm   *patternmatcher.PatternMatcher
}

// LoadDockerignore reads a .dockerignore file.
func LoadDockerignore(p string) (*Dockerignore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return &Dockerignore{path: p, pm: pm}, nil
}

// Excluded reports whether rel (slash-separated, relative to the build
// context) stays out of the build context: the last pattern that matches
// it or a directory above it decides.
func (d *Dockerignore) Excluded(rel string) (bool, error) {
	out, err := d.pm.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf("match %s against %s: %w", rel, d.path, err)
	}
	return out, nil
}
