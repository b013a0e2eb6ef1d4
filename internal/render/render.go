// Package render turns secrets into what a child process consumes: it runs
// the built-in and user text/templates over the secret data, producing
// NAME=value environment lines and file contents, each file checked by its
// kind (.json must parse). It writes nothing: refresh writes the files.
//
// It must never let a secret value into an error or a log line, never let
// a value inserted by a template add an environment variable, and never
// hand out a partial render.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/templates"
)

// EnvKey is the data key that holds AION_ENV. No secret may use this name.
const EnvKey = "env"

// Data is what templates see: each configured secret under its lower-case
// name as decoded from Vault's JSON with UseNumber (so numbers are
// json.Number), and EnvKey holding the AION_ENV string.
type Data map[string]any

// Options configures Load.
type Options struct {
	TemplatesDir string      // optional user dir; adds templates and overrides built-ins of the same file name
	RenderDir    string      // absolute dir for file outputs
	FileMode     os.FileMode // default 0600 when zero
	Secrets      []string    // configured secret names, lower-case ("db", "gateway_api_keys", ...)
}

// Kind says where a template's output goes.
type Kind string

const (
	KindEnv  Kind = "env"  // X.env.tmpl: NAME=value lines for the child's environment
	KindFile Kind = "file" // X.tmpl: file X in the render dir
)

// builtIn is the Source of a template embedded in the binary.
const builtIn = "built-in"

// Template describes one loaded template, for `aion-exec check` and for
// knowing which secrets feed which output.
type Template struct {
	Name    string   // file name, e.g. "db.env.tmpl"
	Kind    Kind     // KindEnv or KindFile
	File    string   // output file name for KindFile, e.g. "gateway-keys.json"
	Source  string   // "built-in" or the path it was read from
	Secrets []string // secrets it refers to, sorted, including those of files it names with renderPath
	Active  bool     // every secret it refers to is configured

	tmpl *template.Template
	*analysis
}

// Set is a loaded, immutable collection of templates. It is safe for
// concurrent use.
type Set struct {
	renderDir string
	mode      os.FileMode
	list      []*Template     // sorted by Name
	files     map[string]bool // file outputs of active templates, for renderPath
}

// Load reads the built-in templates and those in opts.TemplatesDir, parses
// them and decides which are active for the configured secrets. An inactive
// built-in is skipped; an inactive user template is an error, because its
// author meant it to render.
func Load(opts Options) (*Set, error) {
	if !filepath.IsAbs(opts.RenderDir) {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("load templates: render dir %q is not an absolute path", opts.RenderDir))
	}
	configured := map[string]bool{}
	for _, name := range opts.Secrets {
		if name == EnvKey {
			return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("load templates: secret name %q is reserved for AION_ENV", name))
		}
		configured[name] = true
	}
	s := &Set{renderDir: filepath.Clean(opts.RenderDir), mode: opts.FileMode, files: map[string]bool{}}
	if s.mode == 0 {
		s.mode = 0o600
	}

	byName := map[string]*Template{}
	builtins, err := fs.Glob(templates.FS, "*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("load built-in templates: %w", err)
	}
	for _, name := range builtins {
		text, err := fs.ReadFile(templates.FS, name)
		if err != nil {
			return nil, fmt.Errorf("load built-in template %s: %w", name, err)
		}
		if byName[name], err = s.parse(name, builtIn, string(text)); err != nil {
			return nil, err
		}
	}
	if opts.TemplatesDir != "" {
		if err := s.loadDir(opts.TemplatesDir, byName); err != nil {
			return nil, err
		}
	}

	for _, t := range byName {
		s.list = append(s.list, t)
	}
	slices.SortFunc(s.list, func(a, b *Template) int { return strings.Compare(a.Name, b.Name) })
	if err := s.activate(configured); err != nil {
		return nil, err
	}
	return s, nil
}

// loadDir adds the *.tmpl files of dir to byName, replacing built-ins of the
// same name. Dotfiles are skipped because Kubernetes mounts a ConfigMap as
// symlinks into a hidden ..data directory; the symlinks themselves are
// followed.
func (s *Set) loadDir(dir string, byName map[string]*Template) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return sysexits.Wrap(sysexits.NoInput, fmt.Errorf("load templates: %w", err))
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".tmpl") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			return sysexits.Wrap(sysexits.NoInput, fmt.Errorf("load templates: %w", err))
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return sysexits.Wrap(sysexits.NoInput, fmt.Errorf("load templates: %w", err))
		}
		if len(bytes.TrimSpace(text)) == 0 {
			delete(byName, name) // how a user switches a built-in off
			continue
		}
		if byName[name], err = s.parse(name, path, string(text)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) parse(name, source, text string) (*Template, error) {
	t := &Template{Name: name, Kind: KindFile, File: strings.TrimSuffix(name, ".tmpl"), Source: source}
	if strings.HasSuffix(name, ".env.tmpl") {
		t.Kind, t.File = KindEnv, ""
	}
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(s.funcs(t.Kind)).Parse(text)
	if err != nil {
		// text/template already says "template: NAME:LINE: what"; keep
		// that and only put the operation first.
		return nil, sysexits.Wrap(sysexits.DataErr, errors.New("parse template "+strings.TrimPrefix(err.Error(), "template: ")))
	}
	t.tmpl = tmpl
	t.analysis = analyze(tmpl)
	return t, nil
}

// activate computes each template's secrets, adding those of the file
// templates it names with renderPath, since a variable naming a file is only
// useful when the file is rendered too.
func (s *Set) activate(configured map[string]bool) error {
	producer := map[string]*Template{}
	for _, t := range s.list {
		if t.Kind == KindFile {
			producer[t.File] = t
		}
	}
	for _, t := range s.list {
		secrets := map[string]bool{}
		via := map[string]string{} // secret -> file that brought it in, for the error
		seen := map[*Template]bool{}
		var visit func(u *Template, file string) error
		visit = func(u *Template, file string) error {
			if seen[u] {
				return nil
			}
			seen[u] = true
			for ref := range u.refs {
				if ref != EnvKey && !secrets[ref] {
					secrets[ref], via[ref] = true, file
				}
			}
			for f := range u.files {
				p := producer[f]
				if p == nil {
					return fmt.Errorf("load template %s: renderPath names %s, which no template renders", t.Name, f)
				}
				if err := visit(p, f); err != nil {
					return err
				}
			}
			return nil
		}
		if err := visit(t, ""); err != nil {
			if t.Source == builtIn {
				continue // its file template was switched off
			}
			return sysexits.Wrap(sysexits.DataErr, err)
		}
		t.Active = true
		for name := range secrets {
			t.Secrets = append(t.Secrets, name)
		}
		slices.Sort(t.Secrets)
		for _, name := range t.Secrets {
			if configured[name] {
				continue
			}
			t.Active = false
			if t.Source == builtIn {
				break
			}
			how := ""
			if via[name] != "" {
				how = " (through renderPath " + via[name] + ")"
			}
			return sysexits.Wrap(sysexits.DataErr, fmt.Errorf("load template %s: refers to secret %s%s, which is not configured (set AION_%s_SECRET_PATH)",
				t.Name, name, how, strings.ToUpper(name)))
		}
	}
	for _, t := range s.list {
		if t.Active && t.Kind == KindFile {
			s.files[t.File] = true
		}
	}
	return nil
}

// Templates lists every loaded template, active or not, sorted by name.
func (s *Set) Templates() []Template {
	out := make([]Template, len(s.list))
	for i, t := range s.list {
		out[i] = *t
		out[i].Secrets = slices.Clone(t.Secrets)
	}
	return out
}

// Names reports whether key is a field name or string literal in the text
// of an active template. Only such keys may be shown by name (in `check`
// and change logs): the keys of some secrets are secrets themselves
// (gateway API keys are map keys), and template text is not secret.
func (s *Set) Names(key string) bool {
	for _, t := range s.list {
		if t.Active && t.names[key] {
			return true
		}
	}
	return false
}

// Output is one complete render.
type Output struct {
	Env   []string // sorted, "NAME=value", unique names
	Files []File   // sorted by Name

	names map[string]bool // see Names
}

// Names reports whether key is a field name or string literal of the
// templates that rendered o. A change log names a changed key only if it
// is one of these (or a host field): template text is not secret, but the
// keys of some secrets are (gateway API keys are map keys).
func (o *Output) Names(key string) bool { return o.names[key] }

// File is one rendered file output.
type File struct {
	Name string // file name, e.g. "gateway-keys.json"
	Path string // absolute path in the render dir
	Data []byte
	Mode os.FileMode
}

// Render executes every active template over data. It is all or nothing:
// any error means no output. Errors name the template and line and never
// hold a secret value.
func (s *Set) Render(data Data) (*Output, error) {
	out := &Output{names: map[string]bool{}}
	env := map[string]string{}   // name -> value
	owner := map[string]string{} // name -> template that set it
	for _, t := range s.list {
		if !t.Active {
			continue
		}
		for _, name := range t.Secrets {
			if _, ok := data[name]; !ok {
				return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("render template %s: no data for secret %s", t.Name, name))
			}
		}
		var buf bytes.Buffer
		if err := t.tmpl.Execute(&buf, data); err != nil {
			return nil, t.execError(err, data)
		}
		for name := range t.names {
			out.names[name] = true
		}
		if t.Kind == KindFile {
			if err := validate(t.File, buf.Bytes()); err != nil {
				return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("render template %s: %w", t.Name, err))
			}
			out.Files = append(out.Files, File{Name: t.File, Path: filepath.Join(s.renderDir, t.File), Data: buf.Bytes(), Mode: s.mode})
			continue
		}
		// A variable name can come from data (range over a secret's
		// keys), so names in these errors are redacted.
		redact := func(s string) string { return newRedactor(data).redact(s) }
		vars, err := parseEnv(buf.String(), redact)
		if err != nil {
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("render template %s: %w", t.Name, err))
		}
		for _, v := range vars {
			if prev, ok := owner[v.name]; ok {
				err := fmt.Errorf("render: variable %s is set by both %s and %s", redact(v.name), prev, t.Name)
				if prev == t.Name {
					err = fmt.Errorf("render template %s: variable %s is set twice", t.Name, redact(v.name))
				}
				return nil, sysexits.Wrap(sysexits.DataErr, err)
			}
			owner[v.name], env[v.name] = t.Name, v.value
		}
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		out.Env = append(out.Env, name+"="+env[name])
	}
	slices.SortFunc(out.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

type envVar struct{ name, value string }

// isEnvName reports whether s is [A-Za-z_][A-Za-z0-9_]*: checked for every
// rendered variable, so by hand rather than with a regexp compiled at start.
func isEnvName(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return s != ""
}

// parseEnv splits rendered env template output into variables. Values that
// template actions insert were already checked for line breaks and NULs, so
// each line here is one the template author wrote.
func parseEnv(text string, redact func(string) string) ([]envVar, error) {
	var vars []envVar
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimLeft(strings.TrimSuffix(line, "\r"), " \t")
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("output line %d: want NAME=value", i+1)
		case !isEnvName(name):
			return nil, fmt.Errorf("output line %d: invalid variable name %q", i+1, redact(name))
		case strings.ContainsAny(value, "\r\x00"):
			return nil, fmt.Errorf("output line %d: value of %s contains a carriage return or NUL", i+1, redact(name))
		}
		vars = append(vars, envVar{name, value})
	}
	return vars, nil
}
