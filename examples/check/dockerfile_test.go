package check

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// TestExamplesDockerfile: the repository's Dockerfile is multi-stage; it
// builds with CGO_ENABLED=0 and -trimpath from sources that exist and that
// .dockerignore lets in; its final stage runs as a non-root user with an
// ENTRYPOINT that is the binary it copies; the render directory is made for
// that user. The example Node service's Dockerfile copies that binary from
// where it is and runs as non-root under aion-exec.
func TestExamplesDockerfile(t *testing.T) {
	root := repoRoot(t)
	df := filepath.Join(root, "Dockerfile")
	d := parseDockerfile(t, df)
	if len(d.Stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a final one", len(d.Stages))
	}
	ignore, err := LoadDockerignore(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	copied := checkBuildStages(t, root, d, ignore)
	checkBuildNeeds(t, root, ignore, copied)
	binary := checkFinalStage(t, d)

	c := loadCompose(t, root)
	for _, name := range c.ServiceNames() {
		s, _ := c.Service(name)
		if b, ok := BuildOf(s); ok && b.Dockerfile != df {
			checkServiceDockerfile(t, root, b, binary)
		}
	}
}

// runText is a RUN command's command line.
func runText(r *instructions.RunCommand) string {
	return strings.Join(r.CmdLine, " ")
}

// checkBuildStages: what the build stages copy from the context exists and
// is let in; a stage runs a static, reproducible go build; the render
// directory is made 0700. It returns what they copy, cleaned.
func checkBuildStages(t *testing.T, root string, d *Dockerfile, ignore *Dockerignore) (copied []string) {
	t.Helper()
	built := false
	for i, st := range d.Stages[:len(d.Stages)-1] {
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					continue
				}
				for _, src := range c.SourcePaths {
					if _, err := os.Stat(filepath.Join(root, src)); err != nil {
						t.Errorf("Dockerfile stage %d: COPY %s: %v", i, src, err)
					}
					if excluded(t, ignore, path.Clean(src)) {
						t.Errorf("Dockerfile stage %d: COPY %s, which .dockerignore leaves out", i, src)
					}
					copied = append(copied, path.Clean(src))
				}
			case *instructions.RunCommand:
				text := runText(c)
				if strings.Contains(text, "run/aion-exec") && !strings.Contains(text, "0700") {
					t.Errorf("Dockerfile: the render directory is not made mode 0700: %s", text)
				}
				if !strings.Contains(text, "go build") {
					continue
				}
				built = true
				for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/aion-exec", "-X main.version=", "-E=github.com/aionos/aion-exec/internal/supervise.entry"} {
					if !strings.Contains(text, want) {
						t.Errorf("Dockerfile: the go build lacks %s: %s", want, text)
					}
				}
			}
		}
	}
	if !built {
		t.Error("Dockerfile: no stage runs go build")
	}
	if b, err := os.ReadFile(filepath.Join(root, "cmd/aion-exec/main.go")); err != nil || !regexp.MustCompile(`(?m)^var version\b`).Match(b) {
		t.Errorf("Dockerfile sets main.version, which cmd/aion-exec/main.go does not declare (%v)", err)
	}
	return copied
}

// checkBuildNeeds: every file the binary is built from is in the context
// and copied; local Vault state and the other modules stay out.
func checkBuildNeeds(t *testing.T, root string, ignore *Dockerignore, copied []string) {
	t.Helper()
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "github.com/aionos/aion-exec"}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/aion-exec")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		dir, err := filepath.Rel(root, f[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range f[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, name)))
		}
	}
	for _, n := range needed {
		if excluded(t, ignore, n) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", n)
		}
		if !slices.ContainsFunc(copied, func(c string) bool { return c == "." || n == c || strings.HasPrefix(n, c+"/") }) {
			t.Errorf("the Dockerfile's build stage does not COPY %s, which the build needs", n)
		}
	}
	for _, secret := range []string{".vault/dev-unseal.json", ".env.vault.dev", "examples/node-service/node_modules/pg/package.json", "bench/go.mod", "examples/check/go.mod"} {
		if !excluded(t, ignore, secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
	}
}

// nonRoot says whether a USER runs as someone other than root.
func nonRoot(user string) bool {
	uid, _, _ := strings.Cut(user, ":")
	return user != "" && uid != "0" && uid != "root"
}

// checkFinalStage: the final stage holds only what the build stages made,
// runs as non-root, with the binary it copies as its exec-form ENTRYPOINT
// and the render directory owned by its user. It returns the binary's
// path in the image.
func checkFinalStage(t *testing.T, d *Dockerfile) (binary string) {
	t.Helper()
	stageNames := map[string]bool{}
	for _, st := range d.Stages {
		stageNames[st.Name] = st.Name != ""
	}
	var user string
	var chowned []string // owners of what is copied to /run
	for _, c := range d.Final().Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.CopyCommand:
			if c.From != "" && !stageNames[strings.ToLower(c.From)] {
				t.Errorf("Dockerfile: COPY --from=%s names no stage", c.From)
			}
			if c.From != "" && len(c.SourcePaths) == 1 && path.Base(c.SourcePaths[0]) == "aion-exec" {
				binary = c.DestPath
			}
			if c.From == "" {
				t.Errorf("Dockerfile: the final stage copies %v from the context; it should hold only what the build stage made", c.SourcePaths)
			}
			if path.Clean(c.DestPath) == "/run" {
				chowned = append(chowned, c.Chown)
			}
		case *instructions.RunCommand:
			t.Errorf("Dockerfile: RUN in the final stage (%s); distroless has no shell", runText(c))
		}
	}
	if !nonRoot(user) {
		t.Errorf("Dockerfile: the final stage runs as %q; want a non-root USER", user)
	}
	entrypoint, shell := d.Entrypoint()
	switch {
	case len(entrypoint) == 0:
		t.Error("Dockerfile: the final stage has no ENTRYPOINT")
	case shell:
		t.Errorf("Dockerfile: ENTRYPOINT %s is in shell form; the exec form keeps aion-exec PID 1", entrypoint[0])
	case binary == "" || entrypoint[0] != binary:
		t.Errorf("Dockerfile: ENTRYPOINT %v is not the binary the final stage copies (%q)", entrypoint, binary)
	}
	uid, _, _ := strings.Cut(user, ":")
	if !slices.ContainsFunc(chowned, func(o string) bool { return strings.HasPrefix(o, uid+":") }) {
		t.Errorf("Dockerfile: the final stage does not copy /run/aion-exec owned by %s", uid)
	}
	return binary
}

// checkServiceDockerfile: a service image built on another base copies
// aion-exec from aion-exec's image, copies only what its context has and
// its .dockerignore lets in, runs as non-root, with aion-exec -- as its
// ENTRYPOINT.
func checkServiceDockerfile(t *testing.T, root string, b Build, binary string) {
	t.Helper()
	d := parseDockerfile(t, b.Dockerfile)
	name := Rel(root, b.Dockerfile)
	var ignore *Dockerignore
	if _, err := os.Stat(b.Dockerfile + ".dockerignore"); err == nil {
		if ignore, err = LoadDockerignore(b.Dockerfile + ".dockerignore"); err != nil {
			t.Fatal(err)
		}
	}
	var user string
	copiesAion := false
	for _, c := range d.Final().Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.CopyCommand:
			if c.From != "" {
				if len(c.SourcePaths) == 1 && c.SourcePaths[0] == binary && path.Base(c.DestPath) == "aion-exec" {
					copiesAion = true
				}
				continue
			}
			for _, src := range c.SourcePaths {
				if _, err := os.Stat(filepath.Join(b.Context, src)); err != nil {
					t.Errorf("%s: COPY %s: not in its build context %s", name, src, Rel(root, b.Context))
				}
				if ignore != nil && excluded(t, ignore, path.Clean(src)) {
					t.Errorf("%s: COPY %s, which its .dockerignore leaves out", name, src)
				}
			}
		}
	}
	if !nonRoot(user) {
		t.Errorf("%s: runs as %q; want a non-root USER", name, user)
	}
	if !copiesAion {
		t.Errorf("%s: does not COPY --from=... %s, where aion-exec's image has the binary", name, binary)
	}
	switch entry, shell := d.Entrypoint(); {
	case shell:
		t.Errorf("%s: ENTRYPOINT %s is in shell form; want the exec form [\"aion-exec\", \"--\"], which keeps aion-exec PID 1", name, strings.Join(entry, " "))
	case len(entry) < 2 || path.Base(entry[0]) != "aion-exec" || entry[1] != "--":
		t.Errorf("%s: ENTRYPOINT %q; want [aion-exec --]", name, entry)
	}
}
