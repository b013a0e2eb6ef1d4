package refresh

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/vault"
)

// The trap of dynamic credentials in environment variables: unless
// AION_RESTART_ON=env, a rotation only reloads the child, which keeps the
// old user in its environment. The supervised mode warns once, naming the
// leased secret and the variables it reaches (not those from KV), never a
// value; not when the leased values only reach files, nor when the
// restart rule already covers it.
func TestWarnLeasedEnv(t *testing.T) {
	const warning = "leased secrets reach environment variables"
	kvOnly := []vault.Ref{{Name: "db", Path: "aionos/conn"}}
	merged := append(kvOnly, vault.Ref{Name: "db", Path: "database/creds/app"})
	for _, tc := range []struct {
		name      string
		secrets   []vault.Ref
		restartOn string
		templates map[string]string // in AION_TEMPLATES_DIR, over the built-ins
		want      string            // the leased_env of the one warning; "" for none
	}{
		{"built-in db template, restart on host", merged, "host", nil, "db [DATABASE_URL PGPASSWORD PGUSER]"},
		{"restart never", merged, "never", nil, "db [DATABASE_URL PGPASSWORD PGUSER]"},
		{"restart on env", merged, "env", nil, ""},
		{"no leased part", kvOnly, "host", nil, ""},
		{"leased values in files only", merged, "host",
			map[string]string{"db.env.tmpl": "", "pg.sh.tmpl": "PGUSER={{ .db.username }}\nPGPASSWORD={{ .db.password }}\n"}, ""},
		{"a later KV part wins", append(merged, vault.Ref{Name: "db", Path: "aionos/conn"}), "host", nil, ""},
		{"only the password", merged, "host",
			map[string]string{"db.env.tmpl": "DB_HOST={{ .db.host }}\nDB_USER=app\nDB_PASSWORD={{ .db.password }}\n"}, "db [DB_PASSWORD]"},
		{"altered values that do not render", merged, "host",
			map[string]string{"db.env.tmpl": `DB_USER={{ if ne .db.username "v-app-1" }}{{ required "a known user" "" }}{{ end }}{{ .db.username }}` + "\n"},
			"db [variables of db.env.tmpl]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &leaseSource{ttl: time.Hour, maxTTL: 24 * time.Hour, reads: map[string]int{}, renewed: make(chan struct{}, 10),
				conn: map[string]any{"host": "db.internal", "port": json.Number("5432"), "database": "app", "username": "kv-user", "password": "kv-pw"}}
			tdir := t.TempDir()
			for name, text := range tc.templates {
				writeFile(t, tdir+"/"+name, text)
			}
			var logs bytes.Buffer
			r := New(Options{Secrets: tc.secrets,
				Templates:  render.Options{TemplatesDir: tdir, RenderDir: t.TempDir() + "/out", Secrets: []string{"db"}},
				HostFields: []string{"host", "port", "database"}, RestartOn: tc.restartOn, Interval: time.Hour,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}, src)
			if err := r.Load(); err != nil {
				t.Fatal(err)
			}
			refresh(t, r, All)
			r.WarnLeasedEnv()
			got := strings.TrimSpace(logs.String())
			switch {
			case tc.want == "" && got != "":
				t.Errorf("want no warning, got:\n%s", got)
			case tc.want != "" && (strings.Count(got, "\n") != 0 || !strings.Contains(got, "level=WARN") || !strings.Contains(got, warning) ||
				!strings.Contains(got, "restart_on="+tc.restartOn) || !strings.Contains(got, `leased_env="`+tc.want+`"`)):
				t.Errorf("want one warning naming %q, got:\n%s", tc.want, got)
			}
			assertNoValues(t, got)
		})
	}
}

// assertNoValues fails when a value leaseSource hands out is in s.
func assertNoValues(t *testing.T, s string) {
	t.Helper()
	for _, v := range []string{"v-app-", "pw-", "db.internal", "kv-user", "kv-pw"} {
		if strings.Contains(s, v) {
			t.Errorf("a value (%s...) in the log:\n%s", v, s)
		}
	}
}

// altered changes every value, and keeps its shape.
func TestAltered(t *testing.T) {
	in := map[string]any{"user": "v-app-Zz9", "port": json.Number("-1.5e9"), "chain": []any{"QUJD+/=="}, "ok": true}
	got := altered(in).(map[string]any)
	want := map[string]any{"user": "w-bqq-Aa0", "port": json.Number("-2.6e0"), "chain": []any{"RVKE+/=="}, "ok": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("altered: got %v, want %v", got, want)
	}
	if in["user"] != "v-app-Zz9" {
		t.Errorf("altered changed its argument: %v", in)
	}
}
