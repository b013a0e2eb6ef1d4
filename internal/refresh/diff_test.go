package refresh

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aionos/aion-exec/internal/render"
)

// data decodes secrets the way the Vault client does (numbers as
// json.Number), with AION_ENV set.
func data(t testing.TB, secrets string) render.Data {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(secrets))
	dec.UseNumber()
	var d render.Data
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode test data: %v", err)
	}
	d[render.EnvKey] = "dev"
	return d
}

// load loads the built-ins plus the given user templates, with every
// secret of d configured.
func load(t testing.TB, d render.Data, user map[string]string) *render.Set {
	t.Helper()
	opts := render.Options{RenderDir: "/run/aion-exec-test"}
	for name := range d {
		if name != render.EnvKey {
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
	s, err := render.Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestClassify(t *testing.T) {
	hostFields := []string{"host", "port", "database", "url"}
	base := `{"db": {"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d"}, "gateway_api_keys": {"ak_1": "billing"}}`
	tmpl := map[string]string{"keys.env.tmpl": "N={{ len .gateway_api_keys }}"}
	cases := []struct {
		name   string
		after  string
		user   map[string]string // templates for the second render; nil: same as the first
		want   Change
		empty  bool
		String string
	}{
		{name: "nothing", after: base, empty: true, String: "no change",
			want: Change{}},
		{name: "password", after: `{"db": {"username": "u", "password": "p2", "host": "h", "port": 5432, "database": "d"}, "gateway_api_keys": {"ak_1": "billing"}}`,
			want:   Change{Secrets: []string{"db"}, Fields: map[string][]string{"db": {"password"}}, EnvChanged: []string{"DATABASE_URL", "PGPASSWORD"}},
			String: "secret db changed [password]; env [DATABASE_URL PGPASSWORD]"},
		{name: "host and port", after: `{"db": {"username": "u", "password": "p", "host": "h2", "port": "6543", "database": "d"}, "gateway_api_keys": {"ak_1": "billing"}}`,
			want: Change{Secrets: []string{"db"}, Fields: map[string][]string{"db": {"host", "port"}}, HostChanged: true,
				EnvChanged: []string{"DATABASE_URL", "PGHOST", "PGPORT"}},
			String: "secret db changed [host port]; env [DATABASE_URL PGHOST PGPORT]"},
		{name: "port removed", after: `{"db": {"username": "u", "password": "p", "host": "h", "database": "d"}, "gateway_api_keys": {"ak_1": "billing"}}`,
			want: Change{Secrets: []string{"db"}, Fields: map[string][]string{"db": {"port"}}, HostChanged: true,
				EnvChanged: []string{"DATABASE_URL", "PGPORT"}}},
		{name: "unused key added", after: `{"db": {"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d", "note": "x"}, "gateway_api_keys": {"ak_1": "billing"}}`,
			empty: true, want: Change{Secrets: []string{"db"}, Unnamed: map[string]int{"db": 1}}, String: "secret db changed [1 key]"},
		{name: "unused host field", after: `{"db": {"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d", "url": "x"}, "gateway_api_keys": {"ak_1": "billing"}}`,
			empty: true, want: Change{Secrets: []string{"db"}, Fields: map[string][]string{"db": {"url"}}, HostChanged: true}},
		// Gateway API keys are map keys: they must never be named.
		{name: "api keys rotated", after: `{"db": {"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d"}, "gateway_api_keys": {"ak_2": "billing", "ak_3": "ops"}}`,
			want: Change{Secrets: []string{"gateway_api_keys"}, Unnamed: map[string]int{"gateway_api_keys": 3},
				EnvChanged: []string{"N"}, FilesChanged: []string{"gateway-keys.json"}},
			String: "secret gateway_api_keys changed [3 keys]; env [N]; files [gateway-keys.json]"},
		{name: "template changed only", after: base, user: map[string]string{"keys.env.tmpl": "N=1\nM=2"},
			want: Change{EnvChanged: []string{"M"}}, String: "env [M]"},
		{name: "secret removed with its outputs", after: `{"db": {"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d"}}`,
			user: map[string]string{},
			want: Change{Secrets: []string{"gateway_api_keys"}, Unnamed: map[string]int{"gateway_api_keys": 1},
				EnvChanged: []string{"AION_GATEWAY_API_KEYS_FILE", "N"}, FilesChanged: []string{"gateway-keys.json"}}},
	}
	d0 := data(t, base)
	out0, err := load(t, d0, tmpl).Render(d0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := tmpl
			if c.user != nil {
				user = c.user
			}
			d1 := data(t, c.after)
			out1, err := load(t, d1, user).Render(d1)
			if err != nil {
				t.Fatal(err)
			}
			got := Classify(d0, d1, out0, out1, hostFields)
			if c.want.Fields == nil {
				c.want.Fields = map[string][]string{}
			}
			if c.want.Unnamed == nil {
				c.want.Unnamed = map[string]int{}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Classify =\n%#v\nwant\n%#v", got, c.want)
			}
			if got.Empty() != c.empty {
				t.Errorf("Empty() = %v, want %v", got.Empty(), c.empty)
			}
			if c.String != "" && got.String() != c.String {
				t.Errorf("String() = %q, want %q", got.String(), c.String)
			}
		})
	}
}

func TestClassifyFirstRender(t *testing.T) {
	d := data(t, `{"admin_token": {"token": "t"}}`)
	out, err := load(t, d, nil).Render(d)
	if err != nil {
		t.Fatal(err)
	}
	c := Classify(nil, d, nil, out, nil)
	want := Change{Secrets: []string{"admin_token"}, Fields: map[string][]string{"admin_token": {"token"}}, Unnamed: map[string]int{},
		EnvChanged: []string{"AION_ADMIN_TOKEN", "AION_ADMIN_TOKEN_FILE"}, FilesChanged: []string{"admin-token"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Classify =\n%#v\nwant\n%#v", c, want)
	}
	if got := c.String(); got != "secret admin_token changed [token]; env [AION_ADMIN_TOKEN AION_ADMIN_TOKEN_FILE]; files [admin-token]" {
		t.Errorf("String() = %q", got)
	}
}

func TestDecide(t *testing.T) {
	pw := Change{Secrets: []string{"db"}, EnvChanged: []string{"PGPASSWORD"}}
	host := Change{Secrets: []string{"db"}, HostChanged: true, EnvChanged: []string{"PGHOST"}}
	fileOnly := Change{Secrets: []string{"db"}, FilesChanged: []string{"creds.json"}}
	unused := Change{Secrets: []string{"db"}, HostChanged: true} // nothing rendered changed
	tests := []struct {
		name   string
		c      Change
		policy string
		want   Action
	}{
		{"host: password", pw, "host", Reload},
		{"host: host", host, "host", Restart},
		{"host: file", fileOnly, "host", Reload},
		{"host: unrendered host field", unused, "host", None},
		{"env: password", pw, "env", Restart},
		{"env: file", fileOnly, "env", Reload},
		{"never: host", host, "never", Reload},
		{"never: password", pw, "never", Reload},
		{"nothing", Change{}, "host", None},
	}
	for _, tt := range tests {
		if got := Decide(tt.c, tt.policy); got != tt.want {
			t.Errorf("%s: Decide = %s, want %s", tt.name, got, tt.want)
		}
	}
}
