package check

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Image is an image reference, split as a registry client reads it.
type Image struct {
	Repo   string // without tag or digest
	Tag    string
	Digest string
}

// ParseImage splits an image reference, without normalising it: the
// repository stays as written ("postgres", not "docker.io/library/postgres").
func ParseImage(ref string) (Image, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return Image{}, fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	var im Image
	if n, ok := r.(reference.Named); ok {
		im.Repo = n.Name()
	}
	if t, ok := r.(reference.Tagged); ok {
		im.Tag = t.Tag()
	}
	if d, ok := r.(reference.Digested); ok {
		im.Digest = d.Digest().String()
	}
	return im, nil
}

// ImageProblem says what is wrong with an image reference, if anything: it
// must be built here (by repository) with a tag other than latest, or a
// public image pinned by a tag other than latest or by digest.
func ImageProblem(ref string, built map[string]Build) string {
	switch {
	case ref == "":
		return "no image"
	case strings.Contains(ref, "$"):
		return "an image named by a variable cannot be checked"
	}
	im, err := ParseImage(ref)
	switch {
	case err != nil:
		return err.Error()
	case im.Tag == "latest":
		return "tag latest is not a pin"
	case im.Tag == "" && im.Digest == "":
		if _, ok := built[im.Repo]; ok {
			return "no tag: the build's tag must be named"
		}
		return "no tag or digest: pin the release"
	}
	return ""
}
