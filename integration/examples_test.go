//go:build integration

package integration

// The deployment examples (Dockerfile, examples/compose, examples/kubernetes)
// cannot run here: there is no Docker engine and no cluster, in CI or on the
// developers' machines. These tests check them without one:
//
//   - every YAML file parses, every document;
//   - every AION_* variable they set is one aion-exec knows;
//   - every image is pinned or built from this repository, and every file,
//     directory, build context and volume they name exists;
//   - the Dockerfiles are multi-stage, static, non-root, with an ENTRYPOINT,
//     and their .dockerignore keeps what the build copies;
//   - the compose topology runs as processes: the pinned Vault release with
//     examples/compose/vault/vault.hcl, then each one-shot service's command
//     with that service's environment and volumes (mapped to directories),
//     then the Node service's environment as aion-exec gives it to node;
//   - the Kubernetes init and main containers log in with their own wrapped
//     secret IDs and render what the manifests say, and a spent one fails.
//
// The Node service against a real PostgreSQL is e2e_test.go's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aionos/aion-exec/internal/config"
)

// exRel names path relative to the repository, for messages.
func exRel(p string) string {
	if r, err := filepath.Rel(repoRoot(), p); err == nil {
		return r
	}
	return p
}

const (
	exComposeDir = "examples/compose"
	exKubeDir    = "examples/kubernetes"
)

// exYAMLFiles lists every YAML file of the two example directories.
func exYAMLFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{exComposeDir, exKubeDir} {
		err := filepath.WalkDir(filepath.Join(repoRoot(), dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatal("no YAML files in the examples")
	}
	return out
}

// exDocs parses every document of a YAML file. Empty documents are dropped.
func exDocs(t testing.TB, p string) []map[string]any {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []map[string]any
	for i := 1; ; i++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", exRel(p), i, err)
		}
		if doc == nil {
			continue
		}
		m, ok := doc.(map[string]any)
		if !ok {
			t.Fatalf("%s: document %d is a %T, not a mapping", exRel(p), i, doc)
		}
		out = append(out, m)
	}
}

// Accessors for decoded YAML.

func exMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func exList(v any) []any {
	l, _ := v.([]any)
	return l
}

// exStr is a scalar's text ("" for nil).
func exStr(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// exStrings is a list of scalars, or a string split like a shell word list
// (compose's string form of command and entrypoint).
func exStrings(v any) []string {
	if s, ok := v.(string); ok {
		return strings.Fields(s)
	}
	var out []string
	for _, e := range exList(v) {
		out = append(out, exStr(e))
	}
	return out
}

func exSortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// ---------------------------------------------------------------- compose

// exCompose is docker-compose.yml, decoded.
type exCompose struct {
	dir      string // absolute
	file     string
	services map[string]map[string]any
	volumes  map[string]any
}

func exLoadCompose(t testing.TB) *exCompose {
	t.Helper()
	dir := filepath.Join(repoRoot(), exComposeDir)
	file := filepath.Join(dir, "docker-compose.yml")
	docs := exDocs(t, file)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", exRel(file), len(docs))
	}
	c := &exCompose{dir: dir, file: file, services: map[string]map[string]any{}, volumes: exMap(docs[0]["volumes"])}
	for name, s := range exMap(docs[0]["services"]) {
		c.services[name] = exMap(s)
	}
	if len(c.services) == 0 {
		t.Fatalf("%s: no services", exRel(file))
	}
	return c
}

func (c *exCompose) service(t testing.TB, name string) map[string]any {
	t.Helper()
	s, ok := c.services[name]
	if !ok {
		t.Fatalf("%s has no service %q", exRel(c.file), name)
	}
	return s
}

// exInterpRE finds what compose interpolates: $$, ${...} and $NAME.
var exInterpRE = regexp.MustCompile(`\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// exInterpolate applies compose's interpolation as on a machine whose
// environment sets nothing: $$ is $, ${X:-d} and ${X-d} are d. A variable
// without a default would depend on the user's shell: it is a problem.
func exInterpolate(s string) (string, []string) {
	var problems []string
	out := exInterpRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := exInterpRE.FindStringSubmatch(m)
		expr := sub[1]
		if sub[2] != "" {
			expr = sub[2]
		}
		for _, op := range []string{":-", "-"} {
			if _, def, ok := strings.Cut(expr, op); ok {
				return def
			}
		}
		problems = append(problems, fmt.Sprintf("%s is taken from the environment of `docker compose`, with no default (write $%s for a literal $)", m, m))
		return ""
	})
	return out, problems
}

// env is the environment compose gives the service's container (on top of
// the image's ENV), after interpolation.
func (c *exCompose) env(t testing.TB, name string) map[string]string {
	t.Helper()
	s := c.service(t, name)
	out := map[string]string{}
	for _, f := range exStrings(s["env_file"]) {
		for k, v := range exReadEnvFile(t, filepath.Join(c.dir, f)) {
			out[k] = v
		}
	}
	switch e := s["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			out[k], _ = exInterpolate(exStr(v))
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(exStr(kv), "=")
			out[k], _ = exInterpolate(v)
		}
	case nil:
	default:
		t.Fatalf("service %s: environment is a %T", name, e)
	}
	return out
}

// exReadEnvFile reads NAME=value lines (a compose env_file).
func exReadEnvFile(t testing.TB, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("env_file: %v", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `'"`)
		}
	}
	return out
}

// exMount is one volume, bind mount or tmpfs of a compose service.
type exMount struct {
	kind   string // "bind", "volume", "tmpfs"
	source string // host path (absolute) for bind, volume name for volume
	target string
	ro     bool
}

func (c *exCompose) mounts(t testing.TB, name string) []exMount {
	t.Helper()
	s := c.service(t, name)
	var out []exMount
	for _, v := range exList(s["volumes"]) {
		var m exMount
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) == 1 {
				t.Errorf("service %s: anonymous volume %q; name it so that it is shared and kept", name, v)
				continue
			}
			m.source, m.target = parts[0], parts[1]
			if len(parts) > 2 {
				m.ro = slices.Contains(strings.Split(parts[2], ","), "ro")
			}
			m.kind = "volume"
			if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~") {
				m.kind = "bind"
			}
		case map[string]any:
			m.kind, m.source, m.target = exStr(v["type"]), exStr(v["source"]), exStr(v["target"])
			m.ro = exStr(v["read_only"]) == "true"
		default:
			t.Fatalf("service %s: volume %v is a %T", name, v, v)
		}
		if m.kind == "bind" {
			m.source = filepath.Join(c.dir, m.source)
		}
		out = append(out, m)
	}
	for _, tm := range exStrings(s["tmpfs"]) {
		target, _, _ := strings.Cut(tm, ":")
		out = append(out, exMount{kind: "tmpfs", target: target})
	}
	return out
}

// build is the service's build context and Dockerfile (absolute), if it has one.
func (c *exCompose) build(name string) (context, dockerfile string, ok bool) {
	b := c.services[name]["build"]
	if b == nil {
		return "", "", false
	}
	if s, isStr := b.(string); isStr {
		context = filepath.Join(c.dir, s)
		return context, filepath.Join(context, "Dockerfile"), true
	}
	m := exMap(b)
	context = filepath.Join(c.dir, exStr(m["context"]))
	df := exStr(m["dockerfile"])
	if df == "" {
		df = "Dockerfile"
	}
	return context, filepath.Join(context, df), true
}

// exBuiltImages maps each image repository the compose file builds (without
// tag) to its build context and Dockerfile.
func (c *exCompose) builtImages(t testing.TB) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, name := range exSortedKeys(c.services) {
		ctx, df, ok := c.build(name)
		if !ok {
			continue
		}
		repo, tag, _ := exImageRef(exStr(c.services[name]["image"]))
		if repo == "" || tag == "" {
			t.Errorf("service %s builds an image but names none with a tag (image: repo:tag), so other services and examples/kubernetes cannot refer to it", name)
			continue
		}
		out[repo] = [2]string{ctx, df}
	}
	return out
}

// exImageRef splits an image reference into repository, tag and digest.
func exImageRef(ref string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// exCheckImage says what is wrong with an image reference, if anything:
// it must be built here (by repository) with a tag other than latest, or a
// public image pinned by a tag other than latest or by digest.
func exCheckImage(ref string, built map[string][2]string) string {
	repo, tag, digest := exImageRef(ref)
	switch {
	case repo == "":
		return "no image"
	case strings.Contains(ref, "$"):
		return "an image named by a variable cannot be checked"
	case tag == "latest":
		return "tag latest is not a pin"
	case tag == "" && digest == "":
		if _, ok := built[repo]; ok {
			return "no tag: the build's tag must be named"
		}
		return "no tag or digest: pin the release"
	}
	return ""
}

// ---------------------------------------------------------------- Dockerfiles

// exInstr is one Dockerfile instruction.
type exInstr struct {
	cmd   string            // upper case
	flags map[string]string // --name=value flags (COPY, ADD, RUN)
	args  []string          // words, or the elements of the JSON form
	json  bool
	text  string // the arguments as written
}

// exStage is one build stage.
type exStage struct {
	from, name string
	instrs     []exInstr
}

// exDockerfile parses a Dockerfile well enough to check it: continuation
// lines, comments, flags, the JSON (exec) form.
func exDockerfile(t testing.TB, p string) []exStage {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var stages []exStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		word, rest, _ := strings.Cut(line, " ")
		in := exInstr{cmd: strings.ToUpper(word), flags: map[string]string{}, text: strings.TrimSpace(rest)}
		if strings.HasPrefix(in.text, "[") && (in.cmd == "ENTRYPOINT" || in.cmd == "CMD" || in.cmd == "RUN" || in.cmd == "COPY" || in.cmd == "SHELL") {
			if err := json.Unmarshal([]byte(in.text), &in.args); err != nil {
				t.Fatalf("%s: %s %s: %v", exRel(p), in.cmd, in.text, err)
			}
			in.json = true
		} else {
			words := strings.Fields(in.text)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				k, v, _ := strings.Cut(strings.TrimPrefix(words[0], "--"), "=")
				in.flags[k] = v
				words = words[1:]
			}
			in.args = words
		}
		if in.cmd == "FROM" {
			st := exStage{}
			if len(in.args) > 0 {
				st.from = in.args[0]
			}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "AS") {
				st.name = in.args[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s: %s before the first FROM", exRel(p), in.cmd)
			}
			return
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment, or a parser directive
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(stages) == 0 {
		t.Fatalf("%s: no FROM", exRel(p))
	}
	return stages
}

// exImageCopies maps each path a Dockerfile's final stage copies from its
// build context (the destination, absolute) to that source on this machine.
func exImageCopies(t testing.TB, context, dockerfile string) map[string]string {
	t.Helper()
	stages := exDockerfile(t, dockerfile)
	out := map[string]string{}
	workdir := "/"
	for _, in := range stages[len(stages)-1].instrs {
		switch in.cmd {
		case "WORKDIR":
			workdir = path.Join(workdir, in.args[0])
		case "COPY", "ADD":
			if in.flags["from"] != "" || len(in.args) < 2 {
				continue
			}
			dest := in.args[len(in.args)-1]
			if !path.IsAbs(dest) {
				dest = path.Join(workdir, dest)
			}
			srcs := in.args[:len(in.args)-1]
			for _, src := range srcs {
				d := dest
				if len(srcs) > 1 || strings.HasSuffix(in.args[len(in.args)-1], "/") {
					d = path.Join(dest, path.Base(src))
				}
				out[d] = filepath.Join(context, src)
			}
		}
	}
	return out
}

// exImageEnv is the ENV of a Dockerfile's final stage.
func exImageEnv(t testing.TB, dockerfile string) map[string]string {
	t.Helper()
	stages := exDockerfile(t, dockerfile)
	out := map[string]string{}
	for _, in := range stages[len(stages)-1].instrs {
		if in.cmd != "ENV" {
			continue
		}
		if len(in.args) >= 2 && !strings.Contains(in.args[0], "=") {
			out[in.args[0]] = strings.Join(in.args[1:], " ")
			continue
		}
		for _, w := range in.args {
			k, v, _ := strings.Cut(w, "=")
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// exDockerignore is a .dockerignore: patterns in order, the last match wins,
// a pattern that matches a directory matches everything in it.
type exDockerignore struct {
	pats []struct {
		re      *regexp.Regexp
		exclude bool
	}
}

func exLoadDockerignore(t testing.TB, p string) *exDockerignore {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	di := &exDockerignore{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exclude := true
		if strings.HasPrefix(line, "!") {
			exclude, line = false, strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(path.Clean(line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case line[i] == '*':
				re.WriteString("[^/]*")
			case line[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		re.WriteString("$")
		di.pats = append(di.pats, struct {
			re      *regexp.Regexp
			exclude bool
		}{regexp.MustCompile(re.String()), exclude})
	}
	return di
}

// excluded reports whether rel (slash-separated, relative to the context)
// stays out of the build context.
func (di *exDockerignore) excluded(rel string) bool {
	var prefixes []string
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefixes = append(prefixes, strings.Join(parts[:i+1], "/"))
	}
	out := false
	for _, p := range di.pats {
		for _, pre := range prefixes {
			if p.re.MatchString(pre) {
				out = p.exclude
				break
			}
		}
	}
	return out
}

// ---------------------------------------------------------------- Kubernetes

// exKube is the Kubernetes example: its objects by kind and name, and
// its kustomization.
type exKube struct {
	dir     string
	objects map[string]map[string]map[string]any // kind -> name -> object
	kust    map[string]any
	files   map[string]string // kind/name -> file, for messages
}

func exLoadKube(t testing.TB) *exKube {
	t.Helper()
	k := &exKube{dir: filepath.Join(repoRoot(), exKubeDir), objects: map[string]map[string]map[string]any{}, files: map[string]string{}}
	for _, f := range exYAMLFiles(t) {
		if !strings.HasPrefix(f, k.dir+string(filepath.Separator)) {
			continue
		}
		for _, doc := range exDocs(t, f) {
			kind := exStr(doc["kind"])
			if kind == "Kustomization" {
				k.kust = doc
				continue
			}
			name := exStr(exMap(doc["metadata"])["name"])
			if kind == "" || name == "" || exStr(doc["apiVersion"]) == "" {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", exRel(f))
			}
			if k.objects[kind] == nil {
				k.objects[kind] = map[string]map[string]any{}
			}
			if _, dup := k.objects[kind][name]; dup {
				t.Fatalf("%s: %s %s defined twice", exRel(f), kind, name)
			}
			k.objects[kind][name] = doc
			k.files[kind+"/"+name] = exRel(f)
		}
	}
	if len(k.objects["Deployment"]) == 0 {
		t.Fatal("examples/kubernetes has no Deployment")
	}
	return k
}

// podSpec is the pod template's spec of a Deployment.
func exPodSpec(dep map[string]any) map[string]any {
	return exMap(exMap(exMap(dep["spec"])["template"])["spec"])
}

// exContainer is one container of a pod, init or not.
type exContainer struct {
	init bool
	c    map[string]any
}

func (ec exContainer) name() string { return exStr(ec.c["name"]) }

func exContainers(pod map[string]any) []exContainer {
	var out []exContainer
	for _, c := range exList(pod["initContainers"]) {
		out = append(out, exContainer{true, exMap(c)})
	}
	for _, c := range exList(pod["containers"]) {
		out = append(out, exContainer{false, exMap(c)})
	}
	return out
}

// env is the container's environment: envFrom ConfigMaps, then env, as the
// kubelet builds it. Values from Secrets or fields are not followed.
func (k *exKube) env(t testing.TB, c map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ef := range exList(c["envFrom"]) {
		ref := exMap(exMap(ef)["configMapRef"])
		if ref == nil {
			continue
		}
		cm := k.objects["ConfigMap"][exStr(ref["name"])]
		if cm == nil {
			t.Fatalf("container %s: envFrom ConfigMap %q is not in the manifests", exStr(c["name"]), exStr(ref["name"]))
		}
		for key, v := range exMap(cm["data"]) {
			out[exStr(exMap(ef)["prefix"])+key] = exStr(v)
		}
	}
	for _, e := range exList(c["env"]) {
		out[exStr(exMap(e)["name"])] = exStr(exMap(e)["value"])
	}
	return out
}

// kustomized lists the ConfigMaps and Secrets that the kustomization
// generates, as kind -> name -> its data files (key -> path).
func (k *exKube) generated() map[string]map[string]map[string]string {
	out := map[string]map[string]map[string]string{"ConfigMap": {}, "Secret": {}}
	for kind, field := range map[string]string{"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"} {
		for _, g := range exList(k.kust[field]) {
			files := map[string]string{}
			for _, f := range exStrings(exMap(g)["files"]) {
				key, p, ok := strings.Cut(f, "=")
				if !ok {
					key, p = filepath.Base(f), f
				}
				files[key] = filepath.Join(k.dir, p)
			}
			out[kind][exStr(exMap(g)["name"])] = files
		}
	}
	return out
}

// ---------------------------------------------------------------- what aion-exec knows

// exSecretPathRE is AION_<NAME>_SECRET_PATH.
var exSecretPathRE = regexp.MustCompile(`^AION_[A-Z0-9_]+_SECRET_PATH$`)

// exProduced lists the variables aion-exec's env templates give the child:
// the NAME= lines of templates/*.env.tmpl and examples/*/templates/*.env.tmpl.
func exProduced(t testing.TB) map[string]string {
	t.Helper()
	var files []string
	for _, glob := range []string{"templates/*.env.tmpl", "examples/*/templates/*.env.tmpl"} {
		m, err := filepath.Glob(filepath.Join(repoRoot(), glob))
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
			out[m[1]] = exRel(f)
		}
	}
	return out
}

// exKnown says whether aion-exec reads or produces the AION_* variable name.
func exKnown(name string, produced map[string]string) bool {
	if exSecretPathRE.MatchString(name) {
		return true
	}
	if _, ok := produced[name]; ok {
		return true
	}
	return slices.Contains(config.Names(), name)
}

// ================================================================ tests

// TestExamplesYAMLParses: every YAML file in examples/compose and
// examples/kubernetes parses, every document of it, with no duplicate keys.
func TestExamplesYAMLParses(t *testing.T) {
	for _, f := range exYAMLFiles(t) {
		docs := exDocs(t, f)
		if len(docs) == 0 {
			t.Errorf("%s: no documents", exRel(f))
		}
		t.Logf("%s: %d documents", exRel(f), len(docs))
	}
	c := exLoadCompose(t)
	for _, name := range exSortedKeys(c.services) {
		s := c.services[name]
		if s["image"] == nil && s["build"] == nil {
			t.Errorf("compose service %s has neither image nor build", name)
		}
	}
	k := exLoadKube(t)
	if k.kust == nil {
		t.Errorf("%s has no kustomization.yaml", exKubeDir)
	}
}

// TestExamplesEnvKnown: every AION_* variable that the compose file, the
// Kubernetes manifests and the Dockerfiles set is one aion-exec reads
// (config.Settings, AION_<NAME>_SECRET_PATH) or gives the child (the NAME=
// lines of the env templates). And compose interpolates nothing from the
// user's shell: a literal ${AION_ENV} for aion-exec is written $${AION_ENV}.
func TestExamplesEnvKnown(t *testing.T) {
	produced := exProduced(t)
	for _, want := range []string{"AION_GATEWAY_API_KEYS_FILE", "AION_ADMIN_TOKEN_FILE", "AION_ADMIN_TOKEN", "AION_JWT_PUBLIC_KEYS_FILE", "AION_DB_CREDENTIALS_FILE"} {
		if _, ok := produced[want]; !ok {
			t.Errorf("the scan of the env templates missed %s: %v", want, produced)
		}
	}

	type setting struct{ where, name string }
	var set []setting
	c := exLoadCompose(t)
	for _, name := range exSortedKeys(c.services) {
		for k := range c.env(t, name) {
			set = append(set, setting{fmt.Sprintf("%s service %s", exRel(c.file), name), k})
		}
	}
	kube := exLoadKube(t)
	for _, dname := range exSortedKeys(kube.objects["Deployment"]) {
		for _, ct := range exContainers(exPodSpec(kube.objects["Deployment"][dname])) {
			for k := range kube.env(t, ct.c) {
				set = append(set, setting{fmt.Sprintf("Deployment %s container %s", dname, ct.name()), k})
			}
		}
	}
	// ConfigMap keys that look like variables, whether or not envFrom uses them.
	nameRE := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	for _, name := range exSortedKeys(kube.objects["ConfigMap"]) {
		for k := range exMap(kube.objects["ConfigMap"][name]["data"]) {
			if nameRE.MatchString(k) {
				set = append(set, setting{"ConfigMap " + name, k})
			}
		}
	}
	for _, df := range exDockerfiles(t) {
		for k := range exImageEnv(t, df) {
			set = append(set, setting{exRel(df), k})
		}
	}

	aion := 0
	for _, s := range set {
		if !strings.HasPrefix(s.name, "AION_") {
			continue
		}
		aion++
		if !exKnown(s.name, produced) {
			t.Errorf("%s sets %s, which aion-exec neither reads nor produces", s.where, s.name)
		}
	}
	if aion < 10 {
		t.Errorf("found only %d AION_* settings in the examples; is the parsing broken?", aion)
	}
	t.Logf("%d AION_* settings checked", aion)

	// Compose interpolation, over every string in the file.
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range exSortedKeys(v) {
				walk(where+"."+k, v[k])
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		case string:
			_, problems := exInterpolate(v)
			for _, p := range problems {
				t.Errorf("%s %s: %s", exRel(c.file), where, p)
			}
		}
	}
	for _, doc := range exDocs(t, c.file) {
		walk("", doc)
	}
	for _, name := range exSortedKeys(c.services) {
		for k, v := range c.env(t, name) {
			if exSecretPathRE.MatchString(k) && !strings.Contains(v, "${AION_ENV}") {
				t.Errorf("service %s: %s=%s; the platform's paths are aionos/${AION_ENV}/NAME", name, k, v)
			}
		}
	}
}

// exDockerfiles lists the repository's Dockerfile and the examples' ones.
func exDockerfiles(t testing.TB) []string {
	t.Helper()
	out := []string{filepath.Join(repoRoot(), "Dockerfile")}
	m, err := filepath.Glob(filepath.Join(repoRoot(), exComposeDir, "*Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return append(out, m...)
}

// TestExamplesImagesAndPaths: every image the examples name is built from a
// Dockerfile here or pinned by a tag other than latest; every build context,
// Dockerfile, bind-mounted file, env_file, named volume, depends_on target,
// kustomization resource and generator file exists; every ConfigMap and
// Secret a pod uses is in the manifests, generated, or named in the README
// as something to create.
func TestExamplesImagesAndPaths(t *testing.T) {
	c := exLoadCompose(t)
	built := c.builtImages(t)
	if len(built) < 2 {
		t.Errorf("compose builds %d images, want aion-exec's and the Node service's: %v", len(built), built)
	}
	exists := func(where, p string, dir bool) {
		t.Helper()
		if !strings.HasPrefix(p, repoRoot()+string(filepath.Separator)) && p != repoRoot() {
			t.Errorf("%s names %s, outside the repository", where, p)
		}
		st, err := os.Stat(p)
		switch {
		case err != nil:
			t.Errorf("%s names %s, which does not exist", where, exRel(p))
		case dir && !st.IsDir():
			t.Errorf("%s names %s, which is not a directory", where, exRel(p))
		case !dir && st.IsDir():
			t.Errorf("%s names %s, which is a directory", where, exRel(p))
		}
	}

	for _, name := range exSortedKeys(c.services) {
		s := c.services[name]
		where := fmt.Sprintf("%s service %s", exRel(c.file), name)
		if msg := exCheckImage(exStr(s["image"]), built); msg != "" {
			t.Errorf("%s: image %q: %s", where, exStr(s["image"]), msg)
		}
		if ctx, df, ok := c.build(name); ok {
			exists(where+" build.context", ctx, true)
			exists(where+" build.dockerfile", df, false)
			for cname, v := range exMap(exMap(s["build"])["additional_contexts"]) {
				ref := exStr(v)
				switch {
				case strings.HasPrefix(ref, "service:"):
					other := strings.TrimPrefix(ref, "service:")
					if _, _, ok := c.build(other); !ok {
						t.Errorf("%s: build context %s=%s: no service %s that builds an image", where, cname, ref, other)
					}
				case strings.Contains(ref, "://"):
					t.Errorf("%s: build context %s=%s: not from this repository", where, cname, ref)
				default:
					exists(where+" additional_contexts."+cname, filepath.Join(c.dir, ref), true)
				}
			}
		}
		for _, f := range exStrings(s["env_file"]) {
			exists(where+" env_file", filepath.Join(c.dir, f), false)
		}
		for _, m := range c.mounts(t, name) {
			switch m.kind {
			case "bind":
				// A target with a file extension mounts a file, else a directory.
				exists(where+" volume "+m.target, m.source, !strings.Contains(path.Base(m.target), "."))
			case "volume":
				if _, ok := c.volumes[m.source]; !ok {
					t.Errorf("%s: volume %s is not declared under the top-level volumes", where, m.source)
				}
			}
		}
		deps := map[string]any{}
		maps.Copy(deps, exMap(s["depends_on"]))
		if _, isList := s["depends_on"].([]any); isList {
			for _, d := range exStrings(s["depends_on"]) {
				deps[d] = nil
			}
		}
		for dep, cond := range deps {
			other, ok := c.services[dep]
			if !ok {
				t.Errorf("%s: depends_on %s, which is not a service", where, dep)
				continue
			}
			switch exStr(exMap(cond)["condition"]) {
			case "service_healthy":
				if other["healthcheck"] == nil {
					t.Errorf("%s: waits for %s to be healthy, which has no healthcheck", where, dep)
				}
			case "service_completed_successfully":
				if r := exStr(other["restart"]); r == "always" || r == "unless-stopped" {
					t.Errorf("%s: waits for %s to complete, which restarts %s", where, dep, r)
				}
			}
		}
	}

	// Dockerfiles: every FROM pinned (or a stage of the same file).
	for _, df := range exDockerfiles(t) {
		stages := exDockerfile(t, df)
		var names []string
		for _, st := range stages {
			if st.from != "scratch" && !slices.Contains(names, st.from) {
				if msg := exCheckImage(st.from, nil); msg != "" {
					t.Errorf("%s: FROM %s: %s", exRel(df), st.from, msg)
				}
			}
			names = append(names, st.name)
		}
	}

	// Kubernetes.
	k := exLoadKube(t)
	gen := k.generated()
	readme, err := os.ReadFile(filepath.Join(k.dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range exStrings(k.kust["resources"]) {
		exists("kustomization.yaml resources", filepath.Join(k.dir, r), false)
	}
	for kind, byName := range gen {
		for name, files := range byName {
			for key, f := range files {
				exists(fmt.Sprintf("kustomization.yaml %s %s key %s", kind, name, key), f, false)
			}
		}
	}
	for _, im := range exList(k.kust["images"]) {
		name, tag := exStr(exMap(im)["name"]), exStr(exMap(im)["newTag"])
		if _, ok := built[name]; !ok {
			t.Errorf("kustomization.yaml images: %s is not an image the repository builds (%v)", name, exSortedKeys(built))
		}
		if tag == "" || tag == "latest" {
			t.Errorf("kustomization.yaml images: %s newTag %q; pin a tag", name, tag)
		}
	}
	for _, dname := range exSortedKeys(k.objects["Deployment"]) {
		pod := exPodSpec(k.objects["Deployment"][dname])
		volumes := map[string]map[string]any{}
		for _, v := range exList(pod["volumes"]) {
			vm := exMap(v)
			volumes[exStr(vm["name"])] = vm
			if vm["hostPath"] != nil {
				t.Errorf("Deployment %s volume %s is a hostPath", dname, exStr(vm["name"]))
			}
			refs := map[string]string{
				"ConfigMap": exStr(exMap(vm["configMap"])["name"]),
				"Secret":    exStr(exMap(vm["secret"])["secretName"]),
			}
			for kind, ref := range refs {
				if ref == "" {
					continue
				}
				_, inManifests := k.objects[kind][ref]
				_, generated := gen[kind][ref]
				if !inManifests && !generated && !bytes.Contains(readme, []byte(ref)) {
					t.Errorf("Deployment %s volume %s: %s %s is neither in the manifests, nor generated, nor named in README.md", dname, exStr(vm["name"]), kind, ref)
				}
				if generated {
					var keys []string
					for _, it := range exList(exMap(vm["secret"])["items"]) {
						keys = append(keys, exStr(exMap(it)["key"]))
					}
					for _, it := range exList(exMap(vm["configMap"])["items"]) {
						keys = append(keys, exStr(exMap(it)["key"]))
					}
					for _, key := range keys {
						if _, ok := gen[kind][ref][key]; !ok {
							t.Errorf("Deployment %s volume %s: key %s is not in the generated %s %s", dname, exStr(vm["name"]), key, kind, ref)
						}
					}
				}
			}
		}
		for _, ct := range exContainers(pod) {
			where := fmt.Sprintf("Deployment %s container %s", dname, ct.name())
			if msg := exCheckImage(exStr(ct.c["image"]), built); msg != "" {
				t.Errorf("%s: image %q: %s", where, exStr(ct.c["image"]), msg)
			}
			for _, vm := range exList(ct.c["volumeMounts"]) {
				if _, ok := volumes[exStr(exMap(vm)["name"])]; !ok {
					t.Errorf("%s mounts volume %s, which the pod does not have", where, exStr(exMap(vm)["name"]))
				}
			}
		}
	}
}

// TestExamplesDockerfile: the repository's Dockerfile is multi-stage; it
// builds with CGO_ENABLED=0 and -trimpath from sources that exist and that
// .dockerignore lets in; its final stage runs as a non-root user with an
// ENTRYPOINT that is the binary it copies; the render directory is made for
// that user. The example Node service's Dockerfile copies that binary from
// where it is and runs as non-root under aion-exec.
func TestExamplesDockerfile(t *testing.T) {
	root := repoRoot()
	df := filepath.Join(root, "Dockerfile")
	stages := exDockerfile(t, df)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	stageNames := map[string]int{}
	for i, st := range stages {
		if st.name != "" {
			stageNames[st.name] = i
		}
	}
	ignore := exLoadDockerignore(t, filepath.Join(root, ".dockerignore"))

	// What the build stages copy from the context, and how they build.
	var copied []string
	built := false
	for i, st := range stages[:len(stages)-1] {
		for _, in := range st.instrs {
			switch in.cmd {
			case "COPY", "ADD":
				if in.flags["from"] != "" {
					continue
				}
				for _, src := range in.args[:len(in.args)-1] {
					p := filepath.Join(root, src)
					if _, err := os.Stat(p); err != nil {
						t.Errorf("Dockerfile stage %d: COPY %s: %v", i, src, err)
					}
					if ignore.excluded(path.Clean(src)) {
						t.Errorf("Dockerfile stage %d: COPY %s, which .dockerignore leaves out", i, src)
					}
					copied = append(copied, path.Clean(src))
				}
			case "RUN":
				if !strings.Contains(in.text, "go build") {
					continue
				}
				built = true
				for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/aion-exec", "-X main.version="} {
					if !strings.Contains(in.text, want) {
						t.Errorf("Dockerfile: the go build lacks %s: %s", want, in.text)
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

	// Every file the binary is built from is in the context and copied.
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
		if ignore.excluded(n) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", n)
		}
		if !slices.ContainsFunc(copied, func(c string) bool { return c == "." || n == c || strings.HasPrefix(n, c+"/") }) {
			t.Errorf("the Dockerfile's build stage does not COPY %s, which the build needs", n)
		}
	}
	for _, secret := range []string{".vault/dev-unseal.json", ".env.vault.dev", "examples/node-service/node_modules/pg/package.json", "bench/go.mod"} {
		if !ignore.excluded(secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
	}

	// The final stage.
	var user, binary string
	var entrypoint []string
	for _, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = in.args[0]
		case "ENTRYPOINT":
			if !in.json {
				t.Errorf("Dockerfile: ENTRYPOINT %s is in shell form; the exec form keeps aion-exec PID 1", in.text)
			}
			entrypoint = in.args
		case "COPY":
			from := in.flags["from"]
			if _, ok := stageNames[from]; from != "" && !ok {
				t.Errorf("Dockerfile: COPY --from=%s names no stage", from)
			}
			if from != "" && len(in.args) == 2 && path.Base(in.args[0]) == "aion-exec" {
				binary = in.args[1]
			}
			if from == "" {
				t.Errorf("Dockerfile: the final stage copies %v from the context; it should hold only what the build stage made", in.args)
			}
		case "RUN":
			t.Errorf("Dockerfile: RUN in the final stage (%s); distroless has no shell", in.text)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "0" || uid == "root" {
		t.Errorf("Dockerfile: the final stage runs as %q; want a non-root USER", user)
	}
	if len(entrypoint) == 0 {
		t.Error("Dockerfile: the final stage has no ENTRYPOINT")
	} else if binary == "" || entrypoint[0] != binary {
		t.Errorf("Dockerfile: ENTRYPOINT %v is not the binary the final stage copies (%q)", entrypoint, binary)
	}
	renderDir := false
	for _, in := range final.instrs {
		if in.cmd == "COPY" && strings.HasPrefix(in.flags["chown"], uid+":") && path.Clean(in.args[len(in.args)-1]) == "/run" {
			renderDir = true
		}
	}
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st.instrs {
			if in.cmd == "RUN" && strings.Contains(in.text, "run/aion-exec") && !strings.Contains(in.text, "0700") {
				t.Errorf("Dockerfile: the render directory is not made mode 0700: %s", in.text)
			}
		}
	}
	if !renderDir {
		t.Errorf("Dockerfile: the final stage does not copy /run/aion-exec owned by %s", uid)
	}

	// The Node service's Dockerfile: aion-exec copied from the image above,
	// non-root, aion-exec as the entrypoint.
	c := exLoadCompose(t)
	for _, name := range exSortedKeys(c.services) {
		ctx, ndf, ok := c.build(name)
		if !ok || ndf == df {
			continue
		}
		nstages := exDockerfile(t, ndf)
		nfinal := nstages[len(nstages)-1]
		var nuser string
		var nentry []string
		copiesAion := false
		nignore := (*exDockerignore)(nil)
		if _, err := os.Stat(ndf + ".dockerignore"); err == nil {
			nignore = exLoadDockerignore(t, ndf+".dockerignore")
		}
		for _, in := range nfinal.instrs {
			switch in.cmd {
			case "USER":
				nuser = in.args[0]
			case "ENTRYPOINT":
				nentry = in.args
			case "COPY":
				if in.flags["from"] != "" {
					if len(in.args) == 2 && in.args[0] == binary && path.Base(in.args[1]) == "aion-exec" {
						copiesAion = true
					}
					continue
				}
				for _, src := range in.args[:len(in.args)-1] {
					if _, err := os.Stat(filepath.Join(ctx, src)); err != nil {
						t.Errorf("%s: COPY %s: not in its build context %s", exRel(ndf), src, exRel(ctx))
					}
					if nignore != nil && nignore.excluded(path.Clean(src)) {
						t.Errorf("%s: COPY %s, which its .dockerignore leaves out", exRel(ndf), src)
					}
				}
			}
		}
		if u, _, _ := strings.Cut(nuser, ":"); nuser == "" || u == "0" || u == "root" {
			t.Errorf("%s: runs as %q; want a non-root USER", exRel(ndf), nuser)
		}
		if !copiesAion {
			t.Errorf("%s: does not COPY --from=... %s, where aion-exec's image has the binary", exRel(ndf), binary)
		}
		if len(nentry) < 2 || path.Base(nentry[0]) != "aion-exec" || nentry[1] != "--" {
			t.Errorf("%s: ENTRYPOINT %v; want [aion-exec --]", exRel(ndf), nentry)
		}
	}
}

// TestExamplesKubernetesManifests: the Deployment has an init container that
// runs `aion-exec once` into an emptyDir of medium Memory at the render
// directory, and a main container wrapped by `aion-exec --`; every
// container is non-root, with a read-only root file system, no privilege
// escalation and no capabilities; each container that logs in with AppRole
// has a secret ID of its own (a wrapped one is single use); the templates
// ConfigMap equals examples/node-service/templates and is mounted as a
// directory (so that the kubelet's ..data swap reaches aion-exec).
func TestExamplesKubernetesManifests(t *testing.T) {
	k := exLoadKube(t)
	for _, dname := range exSortedKeys(k.objects["Deployment"]) {
		pod := exPodSpec(k.objects["Deployment"][dname])
		psc := exMap(pod["securityContext"])
		if psc["runAsNonRoot"] != true {
			t.Errorf("Deployment %s: pod securityContext.runAsNonRoot is not true", dname)
		}
		volumes := map[string]map[string]any{}
		for _, v := range exList(pod["volumes"]) {
			volumes[exStr(exMap(v)["name"])] = exMap(v)
		}
		var inits, mains int
		secretIDs := map[string]string{} // volume/key -> container
		for _, ct := range exContainers(pod) {
			where := fmt.Sprintf("Deployment %s container %s", dname, ct.name())
			sc := exMap(ct.c["securityContext"])
			if sc["readOnlyRootFilesystem"] != true {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc["allowPrivilegeEscalation"] != false {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if !slices.Contains(exStrings(exMap(sc["capabilities"])["drop"]), "ALL") {
				t.Errorf("%s: capabilities.drop lacks ALL", where)
			}
			env := k.env(t, ct.c)
			argv := append(exStrings(ct.c["command"]), exStrings(ct.c["args"])...)
			repo, _, _ := exImageRef(exStr(ct.c["image"]))
			switch {
			case ct.init && (repo == "aionos/aion-exec" && slices.Equal(argv, []string{"once"}) ||
				len(argv) == 2 && path.Base(argv[0]) == "aion-exec" && argv[1] == "once"):
				inits++
			case !ct.init && len(argv) > 2 && path.Base(argv[0]) == "aion-exec" && argv[1] == "--":
				mains++
			}
			mounts := map[string]map[string]any{}
			for _, vm := range exList(ct.c["volumeMounts"]) {
				mounts[exStr(exMap(vm)["mountPath"])] = exMap(vm)
			}
			rd := env["AION_RENDER_DIR"]
			if rd == "" {
				rd = "/run/aion-exec"
			}
			if vm := mounts[rd]; vm == nil || exStr(exMap(volumes[exStr(vm["name"])]["emptyDir"])["medium"]) != "Memory" {
				t.Errorf("%s: the render directory %s is not an emptyDir of medium Memory", where, rd)
			}
			if td := env["AION_TEMPLATES_DIR"]; td != "" {
				vm := mounts[td]
				if vm == nil {
					t.Errorf("%s: AION_TEMPLATES_DIR %s is not mounted", where, td)
				} else {
					if vm["subPath"] != nil {
						t.Errorf("%s: templates mounted with subPath, which the kubelet never updates", where)
					}
					cmName := exStr(exMap(volumes[exStr(vm["name"])]["configMap"])["name"])
					cm := k.objects["ConfigMap"][cmName]
					if cm == nil {
						t.Errorf("%s: templates volume is not a ConfigMap of the manifests", where)
					} else {
						exSameTemplates(t, cmName, exMap(cm["data"]))
					}
				}
			}
			if f := env["AION_VAULT_APPROLE_SECRET_ID_FILE"]; f != "" {
				vm := mounts[path.Dir(f)]
				if vm == nil {
					t.Errorf("%s: AION_VAULT_APPROLE_SECRET_ID_FILE %s is in no mounted volume", where, f)
					continue
				}
				sec := exMap(volumes[exStr(vm["name"])]["secret"])
				key := ""
				for _, it := range exList(sec["items"]) {
					if exStr(exMap(it)["path"]) == path.Base(f) {
						key = exStr(exMap(it)["key"])
					}
				}
				id := exStr(sec["secretName"]) + "/" + key
				if other, ok := secretIDs[id]; ok {
					t.Errorf("%s and %s read the same secret ID (%s): a wrapped secret ID can be unwrapped once", other, ct.name(), id)
				}
				secretIDs[id] = ct.name()
			}
		}
		if inits == 0 || mains == 0 {
			t.Errorf("Deployment %s: %d `aion-exec once` init containers and %d `aion-exec --` containers; want one of each", dname, inits, mains)
		}
	}
}

// exSameTemplates checks that a templates ConfigMap holds exactly the files
// of examples/node-service/templates.
func exSameTemplates(t *testing.T, name string, data map[string]any) {
	t.Helper()
	dir := filepath.Join(repoRoot(), "examples/node-service/templates")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want[e.Name()] = string(b)
	}
	got := map[string]string{}
	for k, v := range data {
		got[k] = exStr(v)
	}
	if !maps.Equal(got, want) {
		t.Errorf("ConfigMap %s differs from examples/node-service/templates:\n%v\nwant\n%v", name, got, want)
	}
}

// ---------------------------------------------------------------- running the topology

// exProc is a container turned into a process: where its paths are on this
// machine, and its environment.
type exProc struct {
	where  string
	mounts []exMount // target -> host directory or file (source)
	env    map[string]string
}

// resolve maps a container path to this machine: the longest mount target
// that holds it.
func (p *exProc) resolve(cpath string) (string, bool) {
	best := -1
	host := ""
	for _, m := range p.mounts {
		if (cpath == m.target || strings.HasPrefix(cpath, strings.TrimSuffix(m.target, "/")+"/")) && len(m.target) > best {
			best = len(m.target)
			host = filepath.Join(m.source, strings.TrimPrefix(cpath, m.target))
		}
	}
	return host, best >= 0
}

// hostEnv is the environment on this machine: Vault's address is the test
// Vault's, every absolute path is mapped; drop names variables to leave
// out. A path no mount holds is an error: the container would not have it.
func (p *exProc) hostEnv(t testing.TB, vaultAddr string, vaultHosts []string, drop ...string) []string {
	t.Helper()
	var out []string
	for _, k := range exSortedKeys(p.env) {
		v := p.env[k]
		if slices.Contains(drop, k) {
			continue
		}
		switch {
		case k == "AION_VAULT_ADDR" || k == "VAULT_ADDR":
			u, err := url.Parse(v)
			if err != nil || !slices.Contains(vaultHosts, u.Host) {
				t.Errorf("%s: %s=%s, not Vault's address %v", p.where, k, v, vaultHosts)
			}
			v = vaultAddr
		case strings.HasPrefix(v, "/"):
			h, ok := p.resolve(v)
			if !ok {
				t.Errorf("%s: %s=%s, a path that no volume or image file provides", p.where, k, v)
			}
			v = h
		}
		out = append(out, k+"="+v)
	}
	return out
}

// exChildScript prints the child's environment, a separator line and the
// file that AION_DB_CREDENTIALS_FILE names: it stands in for node.
const exChildScript = `env; echo ---; cat "$AION_DB_CREDENTIALS_FILE"`

// exChildOutput splits exChildScript's output.
func exChildOutput(t testing.TB, out string) (map[string]string, map[string]any) {
	t.Helper()
	envText, creds, ok := strings.Cut(out, "\n---\n")
	if !ok {
		t.Fatalf("child output without separator:\n%s", out)
	}
	env := map[string]string{}
	for _, line := range strings.Split(envText, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(creds), &c); err != nil {
		t.Fatalf("db credentials file: %v\n%s", err, creds)
	}
	return env, c
}

// exNoTypos fails on aion-exec's warning about an AION_* variable it does
// not know.
func exNoTypos(t testing.TB, where string, r result) {
	t.Helper()
	if strings.Contains(r.Stderr, "not a setting of aion-exec") {
		t.Errorf("%s: aion-exec warns about a variable:\n%s", where, r.Stderr)
	}
}

// TestExamplesComposeTopology runs the compose stack's Vault and one-shot
// services as processes, each with its service's command, environment and
// volumes (a directory per named volume, the repository's files for bind
// mounts): the pinned Vault release starts from vault/vault.hcl (storage
// path and addresses rewritten to a temp directory and free ports);
// vault-bootstrap's `dev bootstrap` initialises and seeds it; vault-config's
// script patches the hosts and writes the token file, and a second run
// changes nothing; render-init's `once` renders the files postgres and
// minio read their credentials from, equal to Vault's; and the Node
// service's aion-exec gives node PGHOST=postgres and the credentials file.
func TestExamplesComposeTopology(t *testing.T) {
	t.Parallel()
	c := exLoadCompose(t)
	built := c.builtImages(t)
	volumes := map[string]string{}
	for name := range c.volumes {
		volumes[name] = t.TempDir()
	}
	proc := func(name string, image map[string]string) *exProc {
		p := &exProc{where: "compose service " + name, env: c.env(t, name)}
		for target, src := range image {
			p.mounts = append(p.mounts, exMount{kind: "image", source: src, target: target})
		}
		for _, m := range c.mounts(t, name) {
			switch m.kind {
			case "volume":
				m.source = volumes[m.source]
			case "tmpfs":
				m.source = t.TempDir()
				if err := os.Chmod(m.source, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			p.mounts = append(p.mounts, m)
		}
		return p
	}
	aionImage := func(name string) map[string]string {
		repo, _, _ := exImageRef(exStr(c.service(t, name)["image"]))
		b, ok := built[repo]
		if !ok {
			t.Fatalf("service %s: image %s is not built here", name, repo)
		}
		return exImageCopies(t, b[0], b[1])
	}

	// vault: the config file it is started with, via its bind mount.
	vsvc := proc("vault", nil)
	var cfgPath string
	for _, a := range exStrings(c.service(t, "vault")["command"]) {
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			cfgPath = v
		}
	}
	hostCfg, ok := vsvc.resolve(cfgPath)
	if cfgPath == "" || !ok {
		t.Fatalf("service vault: command %v names no -config file that a volume provides", c.service(t, "vault")["command"])
	}
	hcl, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^storage\s+"raft"\s*\{`).Match(hcl) {
		t.Errorf("%s: storage is not raft", exRel(hostCfg))
	}
	field := func(key string) string {
		m := regexp.MustCompile(`(?m)^\s*`+key+`\s*=\s*"([^"]*)"`).FindAllSubmatch(hcl, -1)
		if len(m) != 1 {
			t.Fatalf("%s: %d %s settings, want 1 (the test rewrites it)", exRel(hostCfg), len(m), key)
		}
		return string(m[0][1])
	}
	raftPath, listen, apiAddr := field("path"), field("address"), field("api_addr")
	if _, ok := vsvc.resolve(raftPath); !ok {
		t.Errorf("vault.hcl: raft path %s is on no volume of the vault service: its data would not survive", raftPath)
	}
	_, listenPort, _ := strings.Cut(listen, ":")
	api, err := url.Parse(apiAddr)
	if err != nil || api.Hostname() != "vault" || api.Port() != listenPort {
		t.Errorf("vault.hcl: api_addr %s is not http://vault:%s (the service, the listener's port)", apiAddr, listenPort)
	}
	vaultHosts := []string{"vault:" + listenPort}

	// Rewrite it for this machine and start the pinned release with it.
	dir := t.TempDir()
	port, cport := freePort(t), freePort(t)
	raft := filepath.Join(dir, "raft")
	if err := os.MkdirAll(raft, 0o700); err != nil {
		t.Fatal(err)
	}
	local := string(hcl)
	for key, val := range map[string]string{
		"path":            raft,
		"address":         fmt.Sprintf("127.0.0.1:%d", port),
		"cluster_address": fmt.Sprintf("127.0.0.1:%d", cport),
		"api_addr":        fmt.Sprintf("http://127.0.0.1:%d", port),
		"cluster_addr":    fmt.Sprintf("http://127.0.0.1:%d", cport),
	} {
		re := regexp.MustCompile(`(?m)^(\s*` + key + `\s*=\s*)"[^"]*"`)
		if n := len(re.FindAllString(local, -1)); n != 1 {
			t.Fatalf("vault.hcl: %d %s settings, want 1 (the test rewrites it)", n, key)
		}
		local = re.ReplaceAllString(local, `${1}"`+strings.ReplaceAll(val, "$", "$$")+`"`)
	}
	cfg := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(cfg, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &Vault{Addr: fmt.Sprintf("http://127.0.0.1:%d", port), t: t, args: []string{"server", "-config=" + cfg}}
	v.start()
	t.Cleanup(v.Stop)

	// vault-bootstrap: the image's ENTRYPOINT is aion-exec, command its args.
	boot := proc("vault-bootstrap", aionImage("vault-bootstrap"))
	workdir, ok := boot.resolve(exStr(c.service(t, "vault-bootstrap")["working_dir"]))
	if !ok {
		t.Fatalf("vault-bootstrap: working_dir %s is on no volume: .vault/ and .env.vault.dev would be lost", exStr(c.service(t, "vault-bootstrap")["working_dir"]))
	}
	args := exStrings(c.service(t, "vault-bootstrap")["command"])
	r := aionIn(t, workdir, boot.hostEnv(t, v.Addr, vaultHosts), args...)
	if r.Code != 0 {
		t.Fatalf("vault-bootstrap `aion-exec %s` exited %d\nstdout:\n%s\nstderr:\n%s\nvault:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr, v.log)
	}
	exNoTypos(t, "vault-bootstrap", r)
	for _, f := range []string{".vault/dev-unseal.json", ".env.vault.dev"} {
		assertMode(t, filepath.Join(workdir, f), 0o600)
	}
	root := vaultClient(t, v.Addr, unsealRoot(t, workdir))
	kv := root.KVv2("secret")
	ctx := context.Background()
	dbBefore, err := kv.Get(ctx, "aionos/dev/db-main")
	if err != nil {
		t.Fatal(err)
	}
	if dbBefore.Data["host"] != "127.0.0.1" {
		t.Logf("note: dev bootstrap seeded db-main host %v", dbBefore.Data["host"])
	}

	// vault-config: its entrypoint, a shell script, with the vault CLI of
	// the pinned release on PATH.
	cfgSvc := proc("vault-config", nil)
	entry := exStrings(c.service(t, "vault-config")["entrypoint"])
	if len(entry) != 2 || path.Base(entry[0]) != "sh" {
		t.Fatalf("vault-config: entrypoint %v; the test expects [/bin/sh SCRIPT]", entry)
	}
	script, ok := cfgSvc.resolve(entry[1])
	if !ok {
		t.Fatalf("vault-config: %s is on no volume", entry[1])
	}
	drop := []string{}
	if os.Geteuid() != 0 {
		drop = append(drop, "TOKEN_OWNER") // chown needs root
	}
	shEnv := append(cfgSvc.hostEnv(t, v.Addr, vaultHosts, drop...),
		"PATH="+filepath.Dir(vaultBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())
	r = runIn(t, dir, shEnv, "sh", script)
	if r.Code != 0 {
		t.Fatalf("vault-config exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("vault-config:\n%s", r.Stdout)
	db, err := kv.Get(ctx, "aionos/dev/db-main")
	if err != nil {
		t.Fatal(err)
	}
	minio, err := kv.Get(ctx, "aionos/dev/minio")
	if err != nil {
		t.Fatal(err)
	}
	if db.Data["host"] != "postgres" || minio.Data["endpoint"] != "minio:9000" {
		t.Errorf("after vault-config: db-main host %v, minio endpoint %v; want postgres and minio:9000", db.Data["host"], minio.Data["endpoint"])
	}
	if db.Data["password"] != dbBefore.Data["password"] || db.Data["port"] != dbBefore.Data["port"] {
		t.Error("vault-config changed more of db-main than its host")
	}
	tokenFile, ok := cfgSvc.resolve(cfgSvc.env["TOKEN_DIR"] + "/token")
	if !ok {
		t.Fatal("vault-config: TOKEN_DIR is on no volume")
	}
	assertMode(t, tokenFile, 0o400)
	envVars := sourceEnvFile(t, filepath.Join(workdir, ".env.vault.dev"))
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != envVars["AION_VAULT_TOKEN"] {
		t.Error("the token file does not hold .env.vault.dev's token")
	}
	for _, secret := range []string{unsealRoot(t, workdir), envVars["AION_VAULT_TOKEN"], exStr(db.Data["password"])} {
		if strings.Contains(r.Stdout+r.Stderr, secret) {
			t.Error("vault-config prints a token or a password")
		}
	}
	// Again: nothing to do.
	versions := kvVersions(t, root)
	tokenStat, _ := os.Stat(tokenFile)
	r = runIn(t, dir, shEnv, "sh", script)
	if r.Code != 0 {
		t.Fatalf("vault-config, second run, exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := kvVersions(t, root); !maps.Equal(got, versions) {
		t.Errorf("vault-config's second run wrote secrets: %v, was %v", got, versions)
	}
	if st, _ := os.Stat(tokenFile); !os.SameFile(st, tokenStat) {
		t.Error("vault-config's second run replaced an unchanged token file (aion-exec would log in again)")
	}
	// With arguments: a vault command with the root token (README.md).
	r = runIn(t, dir, shEnv, "sh", script, "kv", "get", "-mount=secret", "-field=host", "aionos/dev/db-main")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "postgres" {
		t.Errorf("vault-config kv get: exit %d, %q; want postgres\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// render-init: `aion-exec once` into the rendered volume.
	render := proc("render-init", aionImage("render-init"))
	args = exStrings(c.service(t, "render-init")["command"])
	if !slices.Equal(args, []string{"once"}) {
		t.Errorf("render-init: command %v, want [once]", args)
	}
	r = aionIn(t, dir, render.hostEnv(t, v.Addr, vaultHosts), args...)
	if r.Code != 0 {
		t.Fatalf("render-init `aion-exec once` exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "render-init", r)
	renderDir, _ := render.resolve(render.env["AION_RENDER_DIR"])
	want := map[string]any{
		"postgres-password":   db.Data["password"],
		"minio-root-user":     minio.Data["access_key"],
		"minio-root-password": minio.Data["secret_key"],
	}
	for name, val := range want {
		p := filepath.Join(renderDir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("render-init did not render %s: %v", name, err)
			continue
		}
		if string(b) != exStr(val) {
			t.Errorf("render-init's %s is not the value in Vault (%d bytes)", name, len(b))
		}
		assertMode(t, p, 0o600)
	}

	// postgres and minio: every *_FILE they are given is a file render-init
	// wrote (relative names are under /run/secrets, as both images read them).
	renderVolume := ""
	for _, m := range c.mounts(t, "render-init") {
		if m.kind == "volume" && m.target == render.env["AION_RENDER_DIR"] {
			renderVolume = m.source
		}
	}
	for _, name := range []string{"postgres", "minio"} {
		p := proc(name, nil)
		files := 0
		for _, k := range exSortedKeys(p.env) {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			cpath := p.env[k]
			if !path.IsAbs(cpath) {
				cpath = path.Join("/run/secrets", cpath)
			}
			host, ok := p.resolve(cpath)
			if !ok || !strings.HasPrefix(host, volumes[renderVolume]+string(filepath.Separator)) {
				t.Errorf("service %s: %s=%s is not in the volume render-init writes (%s)", name, k, p.env[k], renderVolume)
				continue
			}
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s: %s=%s: render-init did not write it", name, k, p.env[k])
			}
			files++
		}
		if files == 0 {
			t.Errorf("service %s reads no credentials file from render-init", name)
		}
		for _, m := range c.mounts(t, name) {
			if m.source == renderVolume && !m.ro {
				t.Errorf("service %s mounts %s read-write; it only reads it", name, renderVolume)
			}
		}
	}

	// service: the image's ENV under compose's environment, the image's
	// files, its volumes and tmpfs; aion-exec runs a stand-in for node.
	repo, _, _ := exImageRef(exStr(c.service(t, "service")["image"]))
	b, ok := built[repo]
	if !ok {
		t.Fatalf("service: image %s is not built here", repo)
	}
	svc := proc("service", exImageCopies(t, b[0], b[1]))
	imageEnv := exImageEnv(t, b[1])
	for k, val := range imageEnv {
		if _, set := svc.env[k]; !set {
			svc.env[k] = val
		}
	}
	stages := exDockerfile(t, b[1])
	var entrypoint []string
	for _, in := range stages[len(stages)-1].instrs {
		if in.cmd == "ENTRYPOINT" {
			entrypoint = in.args
		}
	}
	if len(entrypoint) < 2 || path.Base(entrypoint[0]) != "aion-exec" {
		t.Fatalf("service image: ENTRYPOINT %v is not aion-exec", entrypoint)
	}
	r = aionIn(t, dir, svc.hostEnv(t, v.Addr, vaultHosts), append(entrypoint[1:], "sh", "-c", exChildScript)...)
	if r.Code != 0 {
		t.Fatalf("service: aion-exec exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "service", r)
	childEnv, creds := exChildOutput(t, r.Stdout)
	for k, want := range map[string]string{"PGHOST": "postgres", "PGPORT": "5432", "PGDATABASE": "aionos", "PORT": "8080"} {
		if childEnv[k] != want {
			t.Errorf("service: node would get %s=%q, want %q", k, childEnv[k], want)
		}
	}
	svcRender, _ := svc.resolve(svc.env["AION_RENDER_DIR"])
	if childEnv["AION_DB_CREDENTIALS_FILE"] != filepath.Join(svcRender, "db-credentials.json") {
		t.Errorf("service: AION_DB_CREDENTIALS_FILE=%s, want db-credentials.json in the tmpfs %s", childEnv["AION_DB_CREDENTIALS_FILE"], svcRender)
	}
	if creds["username"] != db.Data["username"] || creds["password"] != db.Data["password"] {
		t.Error("service: db-credentials.json does not hold Vault's username and password")
	}
}

// exConfigMapVolume lays out data as the kubelet does for a ConfigMap
// volume: the files in a timestamped hidden directory, ..data a symlink to
// it, and a symlink per key.
func exConfigMapVolume(t testing.TB, data map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ts := "..2025_01_01_00_00_00.000000001"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, ts, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestExamplesKubernetesAppRole runs the Deployment's two containers as
// processes against a Raft Vault that dev bootstrap prepared: each gets the
// ConfigMap's environment (Vault's address and CA aside: the test Vault is
// plain HTTP on loopback), the control role's ID, and its own secret ID,
// wrapped with the vault command README.md gives. The init container
// renders db-credentials.json into the shared emptyDir; the main container
// hands node the file and the database host; the init container started
// again with its spent secret ID exits 77, which is why each container,
// and each rollout, needs fresh ones.
func TestExamplesKubernetesAppRole(t *testing.T) {
	t.Parallel()
	k := exLoadKube(t)
	v := startVaultConfig(t, t.TempDir())
	work := t.TempDir()
	r := aionIn(t, work, []string{"AION_VAULT_ADDR=" + v.Addr}, "dev", "bootstrap")
	if r.Code != 0 {
		t.Fatalf("dev bootstrap exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	rootTok := unsealRoot(t, work)
	root := vaultClient(t, v.Addr, rootTok)
	ctx := context.Background()

	// The vault commands of README.md, run with the pinned release's CLI.
	readme, err := os.ReadFile(filepath.Join(k.dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	vaultEnv := []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + rootTok, "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	cli := func(args ...string) string {
		t.Helper()
		if !bytes.Contains(readme, []byte("vault "+strings.Join(args, " "))) {
			t.Errorf("README.md does not say `vault %s`", strings.Join(args, " "))
		}
		r := runIn(t, work, vaultEnv, vaultBin, args...)
		if r.Code != 0 {
			t.Fatalf("vault %v exited %d: %s", args, r.Code, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	roleID := cli("read", "-field=role_id", "auth/approle/role/control/role-id")
	wrapped := map[string]string{}
	for _, key := range []string{"init", "main"} {
		wrapped[key] = cli("write", "-f", "-wrap-ttl=10m", "-field=wrapping_token", "auth/approle/role/control/secret-id")
	}

	dep := k.objects["Deployment"]["node-service"]
	if dep == nil {
		t.Fatal("no Deployment node-service")
	}
	pod := exPodSpec(dep)
	podVolumes := map[string]map[string]any{}
	for _, vol := range exList(pod["volumes"]) {
		podVolumes[exStr(exMap(vol)["name"])] = exMap(vol)
	}
	// The pod's volumes on this machine. The emptyDir is one directory
	// for both containers.
	volumeDirs := map[string]string{}
	gen := k.generated()
	for name, vol := range podVolumes {
		switch {
		case vol["emptyDir"] != nil:
			volumeDirs[name] = t.TempDir()
		case vol["configMap"] != nil:
			cm := k.objects["ConfigMap"][exStr(exMap(vol["configMap"])["name"])]
			data := map[string]string{}
			for key, val := range exMap(cm["data"]) {
				data[key] = exStr(val)
			}
			volumeDirs[name] = exConfigMapVolume(t, data)
		case vol["secret"] != nil:
			sec := exMap(vol["secret"])
			if _, ok := gen["Secret"][exStr(sec["secretName"])]; !ok {
				t.Fatalf("volume %s: Secret %s is not generated by the kustomization", name, exStr(sec["secretName"]))
			}
			data := map[string]string{}
			for _, it := range exList(sec["items"]) {
				key := exStr(exMap(it)["key"])
				if wrapped[key] == "" {
					t.Fatalf("volume %s: key %s, not one of init and main", name, key)
				}
				data[exStr(exMap(it)["path"])] = wrapped[key] + "\n"
			}
			volumeDirs[name] = exConfigMapVolume(t, data)
		}
	}
	// The secret of AION_ENV, where the control policy lets the role read.
	cmEnv := exMap(k.objects["ConfigMap"]["node-service-vault"]["data"])
	env := exStr(cmEnv["AION_ENV"])
	dbPath := strings.ReplaceAll(exStr(cmEnv["AION_DB_SECRET_PATH"]), "${AION_ENV}", env)
	dev, err := root.KVv2("secret").Get(ctx, "aionos/dev/db-main")
	if err != nil {
		t.Fatal(err)
	}
	dev.Data["host"] = "db." + env + ".internal"
	if _, err := root.KVv2("secret").Put(ctx, dbPath, dev.Data); err != nil {
		t.Fatal(err)
	}

	proc := func(ct exContainer) *exProc {
		p := &exProc{where: "container " + ct.name(), env: k.env(t, ct.c)}
		p.env["AION_VAULT_APPROLE_ROLE_ID"] = roleID
		if !ct.init {
			repo, _, _ := exImageRef(exStr(ct.c["image"]))
			c := exLoadCompose(t)
			b, ok := c.builtImages(t)[repo]
			if !ok {
				t.Fatalf("container %s: image %s is not built by examples/compose", ct.name(), repo)
			}
			for target, src := range exImageCopies(t, b[0], b[1]) {
				p.mounts = append(p.mounts, exMount{kind: "image", source: src, target: target})
			}
		}
		for _, vm := range exList(ct.c["volumeMounts"]) {
			p.mounts = append(p.mounts, exMount{kind: "volume", source: volumeDirs[exStr(exMap(vm)["name"])], target: exStr(exMap(vm)["mountPath"])})
		}
		return p
	}
	var initC, mainC exContainer
	for _, ct := range exContainers(pod) {
		if ct.init {
			initC = ct
		} else {
			mainC = ct
		}
	}
	vaultHosts := []string{}
	if u, err := url.Parse(exStr(cmEnv["AION_VAULT_ADDR"])); err == nil {
		vaultHosts = append(vaultHosts, u.Host)
	}

	// The init container: the image's ENTRYPOINT is aion-exec, args its args.
	ip := proc(initC)
	initEnv := ip.hostEnv(t, v.Addr, vaultHosts, "AION_VAULT_CACERT")
	args := append(exStrings(initC.c["command"]), exStrings(initC.c["args"])...)
	r = aionIn(t, work, initEnv, args...)
	if r.Code != 0 {
		t.Fatalf("init container `aion-exec %s` exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "init container", r)
	renderDir, _ := ip.resolve(ip.env["AION_RENDER_DIR"])
	b, err := os.ReadFile(filepath.Join(renderDir, "db-credentials.json"))
	if err != nil {
		t.Fatalf("the init container rendered no db-credentials.json: %v", err)
	}
	var creds map[string]any
	if err := json.Unmarshal(b, &creds); err != nil || creds["password"] != dev.Data["password"] {
		t.Errorf("the init container's db-credentials.json does not hold the password of %s (%v)", dbPath, err)
	}

	// The main container: aion-exec -- with a stand-in for node.
	mp := proc(mainC)
	argv := append(exStrings(mainC.c["command"]), exStrings(mainC.c["args"])...)
	dash := slices.Index(argv, "--")
	if dash < 0 || path.Base(argv[0]) != "aion-exec" {
		t.Fatalf("main container runs %v, not aion-exec -- ...", argv)
	}
	r = aionIn(t, work, mp.hostEnv(t, v.Addr, vaultHosts, "AION_VAULT_CACERT"), append(argv[1:dash+1], "sh", "-c", exChildScript)...)
	if r.Code != 0 {
		t.Fatalf("main container exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "main container", r)
	childEnv, mcreds := exChildOutput(t, r.Stdout)
	if childEnv["PGHOST"] != dev.Data["host"] || childEnv["PORT"] != "8080" {
		t.Errorf("main container: node would get PGHOST=%q PORT=%q, want %v and 8080", childEnv["PGHOST"], childEnv["PORT"], dev.Data["host"])
	}
	if childEnv["AION_DB_CREDENTIALS_FILE"] != filepath.Join(renderDir, "db-credentials.json") {
		t.Errorf("main container: AION_DB_CREDENTIALS_FILE=%s, want the emptyDir's db-credentials.json", childEnv["AION_DB_CREDENTIALS_FILE"])
	}
	if mcreds["password"] != dev.Data["password"] {
		t.Error("main container: db-credentials.json lacks Vault's password")
	}

	// A restart of the init container with the same, spent, secret ID.
	r = aionIn(t, work, initEnv, args...)
	if r.Code != 77 || !strings.Contains(r.Stderr, "already used") {
		t.Errorf("init container with a spent wrapped secret ID: exit %d, want 77 naming it used\nstderr:\n%s", r.Code, r.Stderr)
	}

	// The role may read what the Deployment asks for; nothing in this test
	// leaned on a root token for the containers.
	if s, err := root.Logical().Read("auth/approle/role/control"); err != nil || s == nil {
		t.Fatalf("role control: %v", err)
	} else if pols := fmt.Sprint(s.Data["token_policies"]); !strings.Contains(pols, "control") {
		t.Errorf("role control has policies %s", pols)
	}
}
