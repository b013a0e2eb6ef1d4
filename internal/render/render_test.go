package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aionos/aion-exec/internal/sysexits"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

const renderDir = "/run/aion-exec"

// data decodes a JSON object of secrets the way the vault package does
// (UseNumber) and adds env.
func data(t testing.TB, secrets string) Data {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(secrets))
	dec.UseNumber()
	var d Data
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode test data: %v", err)
	}
	d[EnvKey] = "dev"
	return d
}

// load loads the built-ins plus the given user templates, with every
// secret of d configured.
func load(t testing.TB, d Data, user map[string]string) *Set {
	t.Helper()
	s, err := loadErr(t, d, user)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func loadErr(t testing.TB, d Data, user map[string]string) (*Set, error) {
	t.Helper()
	opts := Options{RenderDir: renderDir}
	for name := range d {
		if name != EnvKey {
			opts.Secrets = append(opts.Secrets, name)
		}
	}
	if user != nil {
		opts.TemplatesDir = t.TempDir()
		for name, text := range user {
			if err := os.WriteFile(filepath.Join(opts.TemplatesDir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return Load(opts)
}

// render loads and renders, failing the test on error.
func render(t testing.TB, secrets string, user map[string]string) *Output {
	t.Helper()
	d := data(t, secrets)
	out, err := load(t, d, user).Render(d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return out
}

// renderErr loads and renders and returns the first error.
func renderErr(t testing.TB, secrets string, user map[string]string) error {
	t.Helper()
	d := data(t, secrets)
	s, err := loadErr(t, d, user)
	if err != nil {
		return err
	}
	_, err = s.Render(d)
	return err
}

func dump(out *Output) string {
	var b strings.Builder
	b.WriteString("== env\n")
	for _, kv := range out.Env {
		b.WriteString(kv + "\n")
	}
	for _, f := range out.Files {
		fmt.Fprintf(&b, "== file %s %s %v\n%s", f.Name, f.Path, f.Mode, f.Data)
		if !bytes.HasSuffix(f.Data, []byte("\n")) {
			b.WriteString("\n\\ no newline at end of file\n")
		}
	}
	return b.String()
}

const (
	dbSecret    = `"db": {"username": "aionos", "password": "s3cret", "host": "postgres", "port": 5432, "database": "aionos"}`
	minioSecret = `"minio": {"endpoint": "minio:9000", "access_key": "AKIAEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG", "secure": false, "bucket": "aionos-dev"}`
	jwtSecret   = `"jwt": {"keys": [{"kid": "2024-01", "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`
	gwSecret    = `"gateway_api_keys": {"ak_live_7Hq2": "billing", "ak_live_9Zx1": "admin <ops>"}`
	adminSecret = `"admin_token": {"token": "hvs.CAESIadmin"}`
)

func TestBuiltinGolden(t *testing.T) {
	cases := []struct{ name, secrets string }{
		{"none", `{}`},
		{"db", `{` + dbSecret + `}`},
		{"db-tricky", `{"db": {"username": "app@corp:x", "password": "p@ss:w/o%rd#?&'\" x", "host": "db.internal", "port": "6543", "database": "my db/1"}}`},
		{"db-ipv6", `{"db": {"username": "aionos", "password": "pw", "host": "fe80::1%eth0", "port": 5432, "database": "aionos"}}`},
		{"db-no-port", `{"db": {"username": "aionos", "password": "pw", "host": "2001:db8::7", "database": "aionos", "sslmode": "verify-full"}}`},
		{"minio", `{` + minioSecret + `}`},
		{"gateway", `{` + gwSecret + `}`},
		{"admin", `{` + adminSecret + `}`},
		{"jwt", `{` + jwtSecret + `}`},
		{"all", `{` + strings.Join([]string{dbSecret, minioSecret, jwtSecret, gwSecret, adminSecret}, ",") + `}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := dump(render(t, c.secrets, nil))
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// app holds distinctive values; appValues lists those no error may show.
const app = `{"app": {"user": "aionos", "password": "Hunter2-correct-horse", "nl": "line1\nEVIL=1", "cr": "ab\rcd", "nul": "ab\u0000cd", "n": null,
	"obj": {"inner": "Inner-Secret-77"}, "list": ["List-Secret-88"], "port": 99999, "badname": "bad-name-Secret-55", "b64": "not*base64*Secret"}}`

var appValues = []string{"Hunter2-correct-horse", "line1", "EVIL", "Inner-Secret-77", "List-Secret-88", "99999", "bad-name-Secret-55", "not*base64*Secret"}

func wantDataErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	if got := sysexits.Code(err); got != sysexits.DataErr {
		t.Errorf("exit code = %d, want %d (error %v)", got, sysexits.DataErr, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
	for _, v := range appValues {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error %q holds secret value %q", err, v)
		}
	}
}

func TestMissingKey(t *testing.T) {
	cases := []struct{ tmpl, want string }{
		{`X={{ .app.nosuchkey }}`, "x.env.tmpl:1:9: secret app has no key nosuchkey"},
		{"\n\nX={{ with .app }}{{ .nosuchkey }}{{ end }}", "x.env.tmpl:3:20: secret app has no key nosuchkey"},
		{`X={{ with .app.obj }}{{ .nosuchkey }}{{ end }}`, "secret app has no key obj.nosuchkey"},
		{`X={{ $d := .app }}{{ $d.nosuchkey }}`, "secret app has no key nosuchkey"},
		{`X={{ $.app.nosuchkey }}`, "secret app has no key nosuchkey"},
		{`X={{ .app.n.nosuchkey }}`, "secret app has no key n.nosuchkey"},
		{`X={{ .app.obj.nosuchkey }}`, "secret app has no key obj.nosuchkey"},
		{`X={{ template "t" .app }}{{ define "t" }}{{ .nosuchkey }}{{ end }}`, "secret app has no key nosuchkey"},
		{`X={{ index .app "nosuchkey" }}`, `value of {{index .app "nosuchkey"}} is missing or null`},
		{`X={{ with .app }}{{ index . "nosuchkey" }}{{ end }}`, `value of {{index . "nosuchkey"}} (secret app) is missing or null`},
		{`X={{ .app.n }}`, "value of {{.app.n}} is missing or null"},
	}
	for _, c := range cases {
		t.Run(c.tmpl, func(t *testing.T) {
			err := renderErr(t, app, map[string]string{"x.env.tmpl": c.tmpl})
			wantDataErr(t, err, "render template x.env.tmpl:", c.want)
		})
	}
}

func TestErrorsNeverHoldValues(t *testing.T) {
	cases := []struct{ name, tmpl, want string }{
		{"range over value", `X={{ range .app.password }}{{ end }}`, "range can't iterate over [redacted]"},
		{"range over value in template", `X={{ template "t" .app.password }}{{ define "t" }}{{ range . }}{{ end }}{{ end }}`, "[redacted]"},
		{"range two vars", `X={{ range $a, $b := .app.port }}{{ end }}`, "at <.app.port>"},
		{"field of string", `X={{ .app.password.x }}`, "can't evaluate field x"},
		{"index out of range", `X={{ index .app.password 99 }}`, "index out of range"},
		{"slice out of range", `X={{ slice .app.password 1 99 }}`, "error calling slice"},
		{"call non-function", `X={{ call .app.password }}`, "error calling call"},
		{"wrong type", `X={{ pgURL .app.password }}`, "wrong type for value"},
		{"compare", `X={{ lt .app.password .app.obj }}`, "error calling lt"},
		{"base64Decode", `X={{ base64Decode .app.b64 }}`, "error calling base64Decode: illegal base64 data"},
		{"required message from data", `X={{ required (print "need " .app.password) "" }}`, "required: need [redacted]"},
		{"renderPath from data", `X={{ renderPath .app.password }}`, "no active template renders [redacted]"},
		{"newline", `X={{ .app.nl }}`, "value of {{.app.nl}} contains a line break"},
		{"carriage return", `X={{ .app.cr }}`, "value of {{.app.cr}} contains a line break"},
		{"NUL", `X={{ .app.nul }}`, "value of {{.app.nul}} contains a NUL byte"},
		{"object", `X={{ .app.obj }}`, "value of {{.app.obj}} is a JSON object or array; use toJSON"},
		{"array", `X={{ .app.list }}`, "value of {{.app.list}} is a JSON object or array"},
		{"all data", `X={{ . }}`, "value of {{.}} is a JSON object or array"},
		{"name from data", `{{ .app.badname }}=1`, `output line 1: invalid variable name "[redacted]"`},
		{"twice from data", "{{ .app.user }}=1\n{{ .app.user }}=2", "variable [redacted] is set twice"},
		{"no equals from data", `{{ .app.password }}`, "output line 1: want NAME=value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantDataErr(t, renderErr(t, app, map[string]string{"x.env.tmpl": c.tmpl}), "x.env.tmpl", c.want)
		})
	}
	t.Run("pgURL bad port", func(t *testing.T) {
		wantDataErr(t, renderErr(t, `{"db": {"username": "u", "password": "Hunter2-correct-horse", "host": "h", "port": 99999, "database": "d"}}`, nil),
			"db.env.tmpl:5:", "at <pgURL .db>: error calling pgURL: key port: not a port number")
	})
	t.Run("invalid JSON file", func(t *testing.T) {
		wantDataErr(t, renderErr(t, app, map[string]string{"x.json.tmpl": `{"a": {{ .app.password }}}`}),
			"render template x.json.tmpl: x.json is not valid JSON (syntax error at byte 7)")
	})
	t.Run("invalid PEM file", func(t *testing.T) {
		wantDataErr(t, renderErr(t, app, map[string]string{"x.pem.tmpl": `{{ .app.password }}`}),
			"render template x.pem.tmpl: x.pem holds data that is not a PEM block")
	})
}

func TestEnvInjection(t *testing.T) {
	for _, v := range []string{"x\nEVIL=1", "x\rEVIL=1", "x\r\nEVIL=1", "x\x00EVIL=1", "\n", "EVIL=1\n"} {
		secret, _ := json.Marshal(map[string]any{"s": map[string]any{"v": v}})
		out, err := func() (*Output, error) {
			d := data(t, string(secret))
			return load(t, d, map[string]string{"x.env.tmpl": "A={{ .s.v }}\nB=2"}).Render(d)
		}()
		if err == nil {
			t.Errorf("value %q: got env %q, want an error", v, out.Env)
			continue
		}
		wantDataErr(t, err, "x.env.tmpl:1:", "{{.s.v}}")
		if strings.Contains(err.Error(), "EVIL") {
			t.Errorf("value %q: error %q holds the value", v, err)
		}
	}
}

func TestEnvLines(t *testing.T) {
	cases := []struct {
		name    string
		secrets string // default {"s": {"v": "v"}}
		user    map[string]string
		want    []string // Env, or nil for an error
		err     string
	}{
		{"comments, blanks and indent", "", map[string]string{"x.env.tmpl": "# a comment\n\n   \n  A=1\n\t# indented comment\nB= spaced value \nC=\nD=a=b"},
			[]string{"A=1", "B= spaced value ", "C=", "D=a=b"}, ""},
		{"CRLF template", "", map[string]string{"x.env.tmpl": "A=1\r\nB={{ .s.v }}\r\n"}, []string{"A=1", "B=v"}, ""},
		{"sorted by name", "", map[string]string{"x.env.tmpl": "B_1=x\nB=y\nA=z"}, []string{"A=z", "B=y", "B_1=x"}, ""},
		{"value from a pipeline", "", map[string]string{"x.env.tmpl": `A={{ .s.v | printf "%s-%s" "p" }}`}, []string{"A=p-v"}, ""},
		{"range over keys", "", map[string]string{"x.env.tmpl": "{{ range $k, $v := .s }}{{ $k }}={{ $v }}\n{{ end }}"}, []string{"v=v"}, ""},
		{"env key", "", map[string]string{"x.env.tmpl": "AION_ENV={{ .env }}"}, []string{"AION_ENV=dev"}, ""},
		{"bad name", "", map[string]string{"x.env.tmpl": "A=1\n1A=2"}, nil, `render template x.env.tmpl: output line 2: invalid variable name "1A"`},
		{"space before =", "", map[string]string{"x.env.tmpl": "A =1"}, nil, `invalid variable name "A "`},
		{"export", "", map[string]string{"x.env.tmpl": "export A=1"}, nil, `invalid variable name "export A"`},
		{"no =", "", map[string]string{"x.env.tmpl": "A"}, nil, "output line 1: want NAME=value"},
		{"literal CR", "", map[string]string{"x.env.tmpl": "A=a\rb"}, nil, "output line 1: value of A contains a carriage return or NUL"},
		{"twice in one", "", map[string]string{"x.env.tmpl": "A=1\nA=2"}, nil, "render template x.env.tmpl: variable A is set twice"},
		{"in two", "", map[string]string{"x.env.tmpl": "A=1", "y.env.tmpl": "A=2"}, nil, "render: variable A is set by both x.env.tmpl and y.env.tmpl"},
		{"built-in and user", `{"jwt": {}}`, map[string]string{"x.env.tmpl": "AION_JWT_PUBLIC_KEYS_FILE=x"}, nil,
			"render: variable AION_JWT_PUBLIC_KEYS_FILE is set by both jwt.env.tmpl and x.env.tmpl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.secrets == "" {
				c.secrets = `{"s": {"v": "v"}}`
			}
			if c.want == nil {
				wantDataErr(t, renderErr(t, c.secrets, c.user), c.err)
			} else if got := render(t, c.secrets, c.user).Env; !slices.Equal(got, c.want) {
				t.Errorf("Env = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("user template overrides built-in", func(t *testing.T) {
		out := render(t, `{`+dbSecret+`}`, map[string]string{"db.env.tmpl": "DB_HOST={{ .db.host }}"})
		if want := []string{"DB_HOST=postgres"}; !slices.Equal(out.Env, want) {
			t.Errorf("Env = %q, want %q", out.Env, want)
		}
		d := data(t, `{`+dbSecret+`}`)
		var src string
		for _, tm := range load(t, d, map[string]string{"db.env.tmpl": "X=1"}).Templates() {
			if tm.Name == "db.env.tmpl" {
				src = tm.Source
			}
		}
		if !strings.HasSuffix(src, "/db.env.tmpl") {
			t.Errorf("Source = %q, want the user file", src)
		}
	})
	t.Run("empty user template switches a built-in off", func(t *testing.T) {
		if out := render(t, `{`+dbSecret+`}`, map[string]string{"db.env.tmpl": " \n"}); len(out.Env) != 0 {
			t.Errorf("Env = %q, want none", out.Env)
		}
		// The env template naming the file goes with it.
		out := render(t, `{`+gwSecret+`}`, map[string]string{"gateway-keys.json.tmpl": ""})
		if len(out.Env) != 0 || len(out.Files) != 0 {
			t.Errorf("got %s, want nothing", dump(out))
		}
	})
	t.Run("user template with unconfigured secret", func(t *testing.T) {
		_, err := loadErr(t, data(t, `{}`), map[string]string{"redis.env.tmpl": "REDIS_URL={{ .redis.url }}"})
		wantDataErr(t, err, "load template redis.env.tmpl: refers to secret redis, which is not configured (set AION_REDIS_SECRET_PATH)")
	})
	t.Run("user template through renderPath", func(t *testing.T) {
		_, err := loadErr(t, data(t, `{}`), map[string]string{"x.env.tmpl": `F={{ renderPath "admin-token" }}`})
		wantDataErr(t, err, "load template x.env.tmpl: refers to secret admin_token (through renderPath admin-token), which is not configured")
	})
	t.Run("renderPath of no template", func(t *testing.T) {
		_, err := loadErr(t, data(t, `{}`), map[string]string{"x.env.tmpl": `F={{ renderPath "nope.json" }}`})
		wantDataErr(t, err, "load template x.env.tmpl: renderPath names nope.json, which no template renders")
	})
	t.Run("parse error names file and line", func(t *testing.T) {
		_, err := loadErr(t, data(t, `{}`), map[string]string{"x.env.tmpl": "A=1\nB={{ .s.v }\n"})
		wantDataErr(t, err, "parse template x.env.tmpl:2: ")
		_, err = loadErr(t, data(t, `{}`), map[string]string{"x.env.tmpl": "A={{ nosuchfunc }}"})
		wantDataErr(t, err, `parse template x.env.tmpl:1: function "nosuchfunc" not defined`)
	})
	t.Run("options", func(t *testing.T) {
		if _, err := Load(Options{RenderDir: "run/x"}); sysexits.Code(err) != sysexits.Usage || !strings.Contains(err.Error(), `render dir "run/x" is not an absolute path`) {
			t.Errorf("relative render dir: got %v", err)
		}
		if _, err := Load(Options{RenderDir: "/run/x", Secrets: []string{"env"}}); sysexits.Code(err) != sysexits.Usage {
			t.Errorf("secret named env: got %v, want a usage error", err)
		}
		_, err := Load(Options{RenderDir: "/run/x", TemplatesDir: filepath.Join(t.TempDir(), "missing")})
		if sysexits.Code(err) != sysexits.NoInput || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing templates dir: got %v", err)
		}
	})
}

// TestLoadConfigMap lays out a directory the way Kubernetes mounts a
// ConfigMap: hidden ..data with the files, visible symlinks into it.
func TestLoadConfigMap(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..2024_01_01")
	for _, p := range []string{data, filepath.Join(dir, "sub.tmpl")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"app.env.tmpl": "A=1", "notes.txt": "x", ".hidden.env.tmpl": "H=1"} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, link := range [][2]string{{"..data", "..2024_01_01"}, {"app.env.tmpl", "..data/app.env.tmpl"}, {"notes.txt", "..data/notes.txt"}, {".hidden.env.tmpl", "..data/.hidden.env.tmpl"}} {
		if err := os.Symlink(link[1], filepath.Join(dir, link[0])); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Load(Options{RenderDir: "/run/x", TemplatesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Render(Data{EnvKey: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=1"}; !slices.Equal(out.Env, want) {
		t.Errorf("Env = %q, want %q", out.Env, want)
	}
}

func TestTemplates(t *testing.T) {
	d := data(t, `{`+dbSecret+`, "jwt": {}}`)
	s := load(t, d, map[string]string{"app.conf.tmpl": `{{ .db.host }} {{ .env }}`})
	type row struct {
		name    string
		kind    Kind
		file    string
		secrets string
		active  bool
	}
	var got []row
	for _, tm := range s.Templates() {
		got = append(got, row{tm.Name, tm.Kind, tm.File, strings.Join(tm.Secrets, ","), tm.Active})
	}
	want := []row{
		{"admin-token.tmpl", KindFile, "admin-token", "admin_token", false},
		{"admin_token.env.tmpl", KindEnv, "", "admin_token", false},
		{"app.conf.tmpl", KindFile, "app.conf", "db", true},
		{"db.env.tmpl", KindEnv, "", "db", true},
		{"gateway-keys.json.tmpl", KindFile, "gateway-keys.json", "gateway_api_keys", false},
		{"gateway_api_keys.env.tmpl", KindEnv, "", "gateway_api_keys", false},
		{"jwt-public-keys.json.tmpl", KindFile, "jwt-public-keys.json", "jwt", true},
		{"jwt.env.tmpl", KindEnv, "", "jwt", true},
		{"minio.env.tmpl", KindEnv, "", "minio", false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Templates() =\n%v\nwant\n%v", got, want)
	}
}

// TestReferences checks which secrets a template is found to refer to.
func TestReferences(t *testing.T) {
	cases := []struct{ tmpl, want string }{
		{`{{ .a.x }}`, "a"},
		{`{{ $.a }}`, "a"},
		{`{{ index . "a" "x" }}`, "a"},
		{`{{ index $ "a" }}`, "a"},
		{`{{ with .a }}{{ .password }}{{ $.b }}{{ end }}`, "a,b"},
		{`{{ range .a }}{{ .x }}{{ end }}`, "a"},
		{`{{ range $k, $v := .a }}{{ $v.x }}{{ $.b.y }}{{ end }}`, "a,b"},
		{`{{ if .a }}{{ .b }}{{ else }}{{ .c }}{{ end }}`, "a,b,c"},
		{`{{ with $x := . }}{{ .a }}{{ end }}`, "a"},
		{`{{ template "t" . }}{{ define "t" }}{{ .a }}{{ template "t" . }}{{ end }}`, "a"},
		{`{{ template "t" .a }}{{ define "t" }}{{ .inner }}{{ $.inner2 }}{{ end }}`, "a"},
		{`{{ define "unused" }}{{ .a }}{{ end }}`, ""},
		{`{{ .env }}`, ""},
		{`{{ $n := "a" }}{{ index . $n }}`, ""}, // not visible statically
		{`{{ renderPath "f.json" }}`, "f"},
	}
	for _, c := range cases {
		t.Run(c.tmpl, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range map[string]string{"x.env.tmpl": c.tmpl, "f.json.tmpl": `{{ toJSON .f }}`} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Load(Options{RenderDir: "/run/x", TemplatesDir: dir, Secrets: []string{"a", "b", "c", "f"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tm := range s.Templates() {
				if tm.Name == "x.env.tmpl" {
					if got := strings.Join(tm.Secrets, ","); got != c.want {
						t.Errorf("Secrets = %q, want %q", got, c.want)
					}
				}
			}
		})
	}
}

func TestRenderFiles(t *testing.T) {
	d := data(t, `{"s": {"v": "v"}}`)
	s, err := Load(Options{RenderDir: "/run/x/", FileMode: 0o640, Secrets: []string{"s"}, TemplatesDir: func() string {
		dir := t.TempDir()
		for _, name := range []string{"b.txt.tmpl", "a.b.tmpl", "a.tmpl"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("{{ .s.v }}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range out.Files {
		got = append(got, fmt.Sprintf("%s %s %v %s", f.Name, f.Path, f.Mode, f.Data))
	}
	want := []string{"a /run/x/a -rw-r----- v", "a.b /run/x/a.b -rw-r----- v", "b.txt /run/x/b.txt -rw-r----- v"}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	if _, err := s.Render(Data{EnvKey: "dev"}); err == nil || !strings.Contains(err.Error(), "no data for secret s") {
		t.Errorf("Render without the secret: got %v", err)
	}
}

func TestIsEnvName(t *testing.T) {
	for name, want := range map[string]bool{
		"A": true, "_": true, "a_b9": true, "DATABASE_URL": true, "_1": true,
		"": false, "9A": false, "A-B": false, "A B": false, "É": false, "A=": false,
	} {
		if got := isEnvName(name); got != want {
			t.Errorf("isEnvName(%q) = %v, want %v", name, got, want)
		}
	}
}
