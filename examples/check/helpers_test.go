package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the checkout these tests live in.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadCompose(t testing.TB, root string) *Compose {
	t.Helper()
	c, err := LoadCompose(root)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKube(t testing.TB, root string) *Kube {
	t.Helper()
	k, err := LoadKube(root)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseDockerfile(t testing.TB, p string) *Dockerfile {
	t.Helper()
	d, err := ParseDockerfile(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// builtImages is the compose file's BuiltImages; a service that builds an
// image without naming it is an error.
func builtImages(t testing.TB, c *Compose) map[string]Build {
	t.Helper()
	built, unnamed := c.BuiltImages()
	for _, name := range unnamed {
		t.Errorf("service %s builds an image but names none with a tag (image: repo:tag), so other services and examples/kubernetes cannot refer to it", name)
	}
	return built
}

// dockerfiles lists the repository's Dockerfile and the examples' ones.
func dockerfiles(t testing.TB, root string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, ComposeDir, "*Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "Dockerfile")}, m...)
}

// excluded says whether the .dockerignore leaves rel out of the context.
func excluded(t testing.TB, di *Dockerignore, rel string) bool {
	t.Helper()
	out, err := di.Excluded(rel)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exists fails unless p, named by where, is in the repository and is a
// directory (dir) or a file (!dir).
func exists(t testing.TB, root, where, p string, dir bool) {
	t.Helper()
	if !strings.HasPrefix(p, root+string(filepath.Separator)) && p != root {
		t.Errorf("%s names %s, outside the repository", where, p)
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		t.Errorf("%s names %s, which does not exist", where, Rel(root, p))
	case dir && !st.IsDir():
		t.Errorf("%s names %s, which is not a directory", where, Rel(root, p))
	case !dir && st.IsDir():
		t.Errorf("%s names %s, which is a directory", where, Rel(root, p))
	}
}
