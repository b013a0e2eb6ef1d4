package check

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// secretPathRE is AION_<NAME>_SECRET_PATH, a secret to read.
var secretPathRE = regexp.MustCompile(`^AION_[A-Z0-9_]+_SECRET_PATH$`)

// helpSettingRE finds a setting in `aion-exec --help`: an AION_* name as
// the first word of an indented line.
var helpSettingRE = regexp.MustCompile(`(?m)^[ \t]+(AION_[A-Z0-9_]+)(?:[ \t]|$)`)

// helpSettings lists the settings that a --help text names.
func helpSettings(help string) map[string]bool {
	out := map[string]bool{}
	for _, m := range helpSettingRE.FindAllStringSubmatch(help, -1) {
		out[m[1]] = true
	}
	return out
}

// knownSettings lists the AION_* variables aion-exec reads, from the
// --help of a binary built from this checkout.
func knownSettings(t testing.TB, root string) map[string]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aion-exec")
	build := exec.Command("go", "build", "-o", bin, "./cmd/aion-exec")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/aion-exec: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatalf("aion-exec --help: %v", err)
	}
	known := helpSettings(string(out))
	if len(known) < 10 || !known["AION_VAULT_ADDR"] {
		t.Fatalf("aion-exec --help (%v) names %d settings (%v); is the parsing broken?\n%s", err, len(known), slices.Sorted(maps.Keys(known)), out)
	}
	return known
}

func TestHelpSettings(t *testing.T) {
	help := "usage:\n  aion-exec [flags] -- COMMAND\n\nsettings:\n" +
		"  AION_VAULT_ADDR                    --vault-addr   Vault API URL (AION_NOT_FIRST)\n" +
		"\tAION_ENV\n" +
		"  AION_<NAME>_SECRET_PATH   --secret NAME=PATH\n" +
		"AION_AT_LINE_START is prose\n"
	got := slices.Sorted(maps.Keys(helpSettings(help)))
	if want := []string{"AION_ENV", "AION_VAULT_ADDR"}; !slices.Equal(got, want) {
		t.Errorf("helpSettings = %v, want %v", got, want)
	}
}

// produced lists the variables aion-exec's env templates give the child
// (the NAME= lines of templates/*.env.tmpl and
// examples/*/templates/*.env.tmpl), each with its file.
func produced(t testing.TB, root string) map[string]string {
	t.Helper()
	var files []string
	for _, glob := range []string{"templates/*.env.tmpl", "examples/*/templates/*.env.tmpl"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	nameRE := regexp.MustCompile(`(?m)^[ \t]*([A-Za-z_][A-Za-z0-9_]*)=`)
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = Rel(root, f)
		}
	}
	return out
}

// setting is a variable an example sets, and where.
type setting struct{ where, name string }

// exampleSettings lists every variable that the compose file, the
// Kubernetes manifests (containers and ConfigMap keys that look like
// variables) and the Dockerfiles set.
func exampleSettings(t testing.TB, root string, c *Compose, k *Kube) []setting {
	t.Helper()
	var set []setting
	for _, name := range c.ServiceNames() {
		s, _ := c.Service(name)
		for k := range s.Environment {
			set = append(set, setting{fmt.Sprintf("%s service %s", Rel(root, c.File), name), k})
		}
	}
	for _, dname := range slices.Sorted(maps.Keys(k.Deployments)) {
		for _, ct := range k.Deployments[dname].Pod().AllContainers() {
			env, err := k.Env(ct)
			if err != nil {
				t.Fatalf("Deployment %s: %v", dname, err)
			}
			for name := range env {
				set = append(set, setting{fmt.Sprintf("Deployment %s container %s", dname, ct.Name), name})
			}
		}
	}
	nameRE := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	for _, name := range slices.Sorted(maps.Keys(k.ConfigMaps)) {
		for key := range k.ConfigMaps[name].Data {
			if nameRE.MatchString(key) {
				set = append(set, setting{"ConfigMap " + name, key})
			}
		}
	}
	for _, df := range dockerfiles(t, root) {
		for name := range parseDockerfile(t, df).ImageEnv() {
			set = append(set, setting{Rel(root, df), name})
		}
	}
	return set
}

// TestExamplesEnvKnown: every AION_* variable that the compose file, the
// Kubernetes manifests and the Dockerfiles set is one aion-exec reads (a
// setting `aion-exec --help` lists, or AION_<NAME>_SECRET_PATH) or gives
// the child (the NAME= lines of the env templates). And compose
// interpolates nothing from the user's shell: a literal ${AION_ENV} for
// aion-exec is written $${AION_ENV}.
func TestExamplesEnvKnown(t *testing.T) {
	root := repoRoot(t)
	made := produced(t, root)
	for _, want := range []string{"AION_GATEWAY_API_KEYS_FILE", "AION_ADMIN_TOKEN_FILE", "AION_ADMIN_TOKEN", "AION_JWT_PUBLIC_KEYS_FILE", "AION_DB_CREDENTIALS_FILE"} {
		if _, ok := made[want]; !ok {
			t.Errorf("the scan of the env templates missed %s: %v", want, made)
		}
	}
	known := knownSettings(t, root)
	c := loadCompose(t, root)
	aion := 0
	for _, s := range exampleSettings(t, root, c, loadKube(t, root)) {
		if !strings.HasPrefix(s.name, "AION_") {
			continue
		}
		aion++
		if _, ok := made[s.name]; !ok && !known[s.name] && !secretPathRE.MatchString(s.name) {
			t.Errorf("%s sets %s, which aion-exec neither reads nor produces", s.where, s.name)
		}
	}
	if aion < 10 {
		t.Errorf("found only %d AION_* settings in the examples; is the parsing broken?", aion)
	}
	t.Logf("%d AION_* settings checked", aion)

	for _, p := range c.FromShell {
		t.Errorf("%s: %s", Rel(root, c.File), p)
	}
	for _, name := range c.ServiceNames() {
		s, _ := c.Service(name)
		for k, v := range Environment(s) {
			if secretPathRE.MatchString(k) && !strings.Contains(v, "${AION_ENV}") {
				t.Errorf("service %s: %s=%s; the platform's paths are aionos/${AION_ENV}/NAME", name, k, v)
			}
		}
	}
}
