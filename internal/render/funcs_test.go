package render

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func secretMap(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPGURL checks pgURL and pgDSN side by side; "error: " marks an
// expected error.
func TestPGURL(t *testing.T) {
	const badHost = "error: key host: not a host name or IP address"
	const badPort = "error: key port: not a port number (1-65535)"
	cases := []struct{ secret, url, dsn string }{
		{`{"username": "u", "password": "p", "host": "h", "port": 5432, "database": "d"}`,
			"postgres://u:p@h:5432/d", "host=h port=5432 user=u password=p dbname=d"},
		{`{"username": "u", "host": "h"}`, "postgres://u@h/", "host=h user=u"},
		{`{"username": "u", "password": "", "host": "h", "port": "05432", "database": "", "sslmode": "require"}`,
			"postgres://u:@h:5432/?sslmode=require", "host=h port=5432 user=u password='' sslmode=require"},
		{`{"username": "", "password": "p", "host": "h"}`, "postgres://:p@h/", "host=h user='' password=p"},
		{`{"username": "a b'c\\d", "password": "p@ss:w/o%rd#?&'\" x+é", "host": "db-1.example_x.internal", "database": "my db/1?x"}`,
			"postgres://a%20b%27c%5Cd:p%40ss%3Aw%2Fo%25rd%23%3F%26%27%22%20x%2B%C3%A9@db-1.example_x.internal/my%20db%2F1%3Fx",
			`host=db-1.example_x.internal user='a b\'c\\d' password='p@ss:w/o%rd#?&\'" x+é' dbname='my db/1?x'`},
		{`{"username": "u", "host": "::1", "port": 5432}`, "postgres://u@[::1]:5432/", "host=::1 port=5432 user=u"},
		{`{"username": "u", "host": "fe80::1%eth0"}`, "postgres://u@[fe80::1%25eth0]/", "host=fe80::1%eth0 user=u"},
		{`{"username": "u", "host": "/var/run/postgresql", "database": "d"}`,
			"postgres://u@/d?host=%2Fvar%2Frun%2Fpostgresql", "host=/var/run/postgresql user=u dbname=d"},
		{`{"username": "u", "host": "/tmp", "sslmode": "disable"}`, "postgres://u@/?host=%2Ftmp&sslmode=disable", "host=/tmp user=u sslmode=disable"},
		{`{"username": true, "host": "h", "port": 1}`, "postgres://true@h:1/", "host=h port=1 user=true"},
		// libpq's keyword form takes any host, a list included; a URL does not.
		{`{"username": "u", "host": "h1,h2"}`, badHost, "host=h1,h2 user=u"},
		{`{"username": "u", "host": "a b"}`, badHost, "host='a b' user=u"},
		{`{"username": "u", "host": "[::1]"}`, badHost, "host=[::1] user=u"},
		{`{"username": "u", "host": "fe80::1%a#b"}`, badHost, "host=fe80::1%a#b user=u"},
		{`{"username": "u", "host": "h:5432"}`, badHost, "host=h:5432 user=u"},
		{`{"username": "u", "host": ""}`, badHost, "host='' user=u"},
		{`{"host": "h"}`, "error: no key username", "error: no key username"},
		{`{"username": "u"}`, "error: no key host", "error: no key host"},
		{`{"username": "u", "host": null}`, "error: no key host", "error: no key host"},
		{`{"username": "u", "host": "h", "port": 0}`, badPort, badPort},
		{`{"username": "u", "host": "h", "port": 65536}`, badPort, badPort},
		{`{"username": "u", "host": "h", "port": "54x"}`, badPort, badPort},
		{`{"username": "u", "host": "h", "port": 5432.0}`, badPort, badPort},
		{`{"username": {"a": 1}, "host": "h"}`, "error: key username: value is a map[string]interface {}, not a string or number",
			"error: key username: value is a map[string]interface {}, not a string or number"},
	}
	result := func(s string, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return s
	}
	for _, c := range cases {
		t.Run(c.secret, func(t *testing.T) {
			m := secretMap(t, c.secret)
			if got := result(pgURL(m)); got != c.url {
				t.Errorf("pgURL = %s\nwant    %s", got, c.url)
			}
			if got := result(pgDSN(m)); got != c.dsn {
				t.Errorf("pgDSN = %s\nwant    %s", got, c.dsn)
			}
		})
	}
}

// TestPGDSNQuote checks libpq's quoting rules for keyword/value strings.
func TestPGDSNQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"":          "''",
		"a b":       "'a b'",
		"it's":      `'it\'s'`,
		`back\`:     `'back\\'`,
		"tab\there": "'tab\there'",
		"a=b":       "a=b",
	} {
		if got := dsnQuote(in); got != want {
			t.Errorf("dsnQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestFuncs(t *testing.T) {
	cases := []struct{ tmpl, want string }{
		{`{{ shellQuote .s.q }}`, `'it'\''s $HOME'`},
		{`{{ shellQuote .s.n }}`, `'5432'`},
		{`{{ base64Encode .s.q }}`, "aXQncyAkSE9NRQ=="},
		{`{{ base64Encode .s.q | base64Decode }}`, "it's $HOME"},
		{`{{ toJSON .s.obj }}`, `{"a":"<b>&","n":1.50}`},
		{`{{ toPrettyJSON .s.obj }}`, "{\n  \"a\": \"<b>&\",\n  \"n\": 1.50\n}"},
		{`{{ toJSON .s.q }}`, `"it's $HOME"`},
		{`{{ index .s "missing" | default "d" }}`, "d"},
		{`{{ .s.empty | default "d" }}`, "d"},
		{`{{ .s.null | default "d" }}`, "d"},
		{`{{ .s.f | default "d" }}`, "false"},
		{`{{ .s.q | default "d" }}`, "it's $HOME"},
		{`{{ required "q is needed" .s.q }}`, "it's $HOME"},
		{`{{ renderPath "out" }}`, "/run/aion-exec/out"},
		{`{{ .s.n }}`, "5432"},
		{`{{ .s.f }}`, "false"},
		{`{{ .env }}`, "dev"},
	}
	for _, c := range cases {
		t.Run(c.tmpl, func(t *testing.T) {
			out := render(t, `{"s": {"q": "it's $HOME", "n": 5432, "obj": {"a": "<b>&", "n": 1.50}, "empty": "", "null": null, "f": false}}`,
				map[string]string{"out.tmpl": c.tmpl})
			if got := string(out.Files[0].Data); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	for tmpl, want := range map[string]string{
		`{{ required "q is needed" .s.empty }}`: "out.tmpl:1:3: required: q is needed",
		`{{ base64Decode "!!" }}`:               `out.tmpl:1:3: at <base64Decode "!!">: error calling base64Decode: illegal base64 data at input byte 0`,
		`{{ shellQuote .s.obj }}`:               "error calling shellQuote: value is a map[string]interface {}, not a string or number",
		`{{ base64Encode .s.null }}`:            "error calling base64Encode: value is null",
	} {
		err := renderErr(t, `{"s": {"empty": "", "obj": {}, "null": null}}`, map[string]string{"out.tmpl": tmpl})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want %q", tmpl, err, want)
		}
	}
}

// libpqParse splits a postgres:// URI the way libpq's
// conninfo_uri_parse_options does, percent-decoding each part.
func libpqParse(t *testing.T, uri string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "postgres://")
	if !ok {
		t.Fatalf("%q: no postgres:// prefix", uri)
	}
	got := map[string]string{}
	decode := func(key, s string) {
		v, err := url.PathUnescape(s) // %XX only; libpq does not read + as space
		if err != nil || strings.Contains(s, "+") && !strings.Contains(v, "+") {
			t.Fatalf("%q: %s %q does not decode: %v", uri, key, s, err)
		}
		got[key] = v
	}
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		user, pass, hasPass := strings.Cut(rest[:i], ":")
		decode("user", user)
		if hasPass {
			decode("password", pass)
		}
		rest = rest[i+1:]
	}
	var host string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			t.Fatalf("%q: unterminated IPv6 host", uri)
		}
		host, rest = rest[1:end], rest[end+1:]
	} else {
		end := strings.IndexAny(rest, ":/?,")
		if end < 0 {
			end = len(rest)
		}
		host, rest = rest[:end], rest[end:]
	}
	if host != "" {
		decode("host", host)
	}
	if port, ok := strings.CutPrefix(rest, ":"); ok {
		end := strings.IndexAny(port, "/?")
		if end < 0 {
			end = len(port)
		}
		got["port"], rest = port[:end], port[end:]
	}
	if db, ok := strings.CutPrefix(rest, "/"); ok {
		db, rest, _ = strings.Cut(db, "?")
		decode("dbname", db)
		rest = "?" + rest
	}
	if q, ok := strings.CutPrefix(rest, "?"); ok && q != "" {
		for _, kv := range strings.Split(q, "&") {
			k, v, _ := strings.Cut(kv, "=")
			decode(k, v)
		}
	}
	return got
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func FuzzPGURL(f *testing.F) {
	f.Add("aionos", "s3cret", "postgres", uint16(5432), "aionos", "", true)
	f.Add("a@b:c", "p@ss:w/o%rd#?&'\" x", "::1", uint16(0), "my db/1", "require", true)
	f.Add("", "", "fe80::1%eth0", uint16(1), "", "", false)
	f.Add("u", "p", "/var/run/postgresql", uint16(6543), "d?x=1", "verify-full", true)
	f.Fuzz(func(t *testing.T, user, password, host string, port uint16, db, sslmode string, hasPassword bool) {
		m := map[string]any{"username": user, "host": host, "database": db, "sslmode": sslmode}
		if hasPassword {
			m["password"] = password
		}
		if port != 0 {
			m["port"] = json.Number(strconv.Itoa(int(port)))
		}
		got, err := pgURL(m)
		addr, ipErr := netip.ParseAddr(host)
		_, zone, hasZone := strings.Cut(host, "%")
		valid := hostName.MatchString(host) || strings.HasPrefix(host, "/") ||
			ipErr == nil && addr.Is6() && strings.Contains(host, ":") && (!hasZone || hostName.MatchString(zone))
		if err != nil {
			if valid {
				t.Fatalf("pgURL(%q): %v", m, err)
			}
			return
		}
		if !valid {
			t.Fatalf("pgURL(%q) = %s, want an error for host %q", m, got, host)
		}

		want := map[string]string{"user": user, "host": host, "dbname": db}
		if hasPassword {
			want["password"] = password
		}
		if port != 0 {
			want["port"] = strconv.Itoa(int(port))
		}
		if sslmode != "" {
			want["sslmode"] = sslmode
		}
		if user == "" && !hasPassword {
			delete(want, "user")
		}
		if lp := libpqParse(t, got); fmt.Sprint(lp) != fmt.Sprint(want) {
			t.Fatalf("libpq reads %s as\n%q\nwant %q", got, lp, want)
		}

		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("net/url cannot parse %s: %v", got, err)
		}
		nu := map[string]string{"dbname": strings.TrimPrefix(u.Path, "/")}
		if u.User != nil {
			nu["user"] = u.User.Username()
			if p, ok := u.User.Password(); ok {
				nu["password"] = p
			}
		}
		for k, v := range map[string]string{"host": u.Hostname(), "port": u.Port()} {
			if v != "" {
				nu[k] = v
			}
		}
		for k, vs := range u.Query() {
			nu[k] = vs[0]
		}
		if fmt.Sprint(nu) != fmt.Sprint(want) {
			t.Fatalf("net/url reads %s as\n%q\nwant %q", got, nu, want)
		}
	})
}

func FuzzEnvLine(f *testing.F) {
	f.Add("NAME", "value")
	f.Add("A", "x\nEVIL=1")
	f.Add("B=C", "x\r")
	f.Add("#B", "")
	f.Add(" B", "\x00")
	f.Add("FIRST", "v")
	dir := f.TempDir()
	text := "FIRST={{ .s.value }}\n{{ .s.name }}={{ .s.value }}\nLAST=end\n"
	if err := os.WriteFile(filepath.Join(dir, "x.env.tmpl"), []byte(text), 0o600); err != nil {
		f.Fatal(err)
	}
	s, err := Load(Options{RenderDir: "/run/x", Secrets: []string{"s"}, TemplatesDir: dir})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		out, err := s.Render(Data{EnvKey: "dev", "s": map[string]any{"name": name, "value": value}})
		if strings.ContainsAny(value, "\n\r\x00") || strings.ContainsAny(name, "\n\r\x00") {
			if err == nil {
				t.Fatalf("name %q value %q: got env %q, want an error", name, value, out.Env)
			}
			return
		}
		// The middle line is exactly what the template wrote around the
		// two values: a comment, or NAME=value split at its first "=".
		line := strings.TrimLeft(name, " \t") + "=" + value
		want := []string{"FIRST=" + value, "LAST=end"}
		lineName, _, _ := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(line, "#"):
		case !isEnvName(lineName) || lineName == "FIRST" || lineName == "LAST":
			if err == nil {
				t.Fatalf("name %q value %q: got env %q, want an error", name, value, out.Env)
			}
			return
		default:
			want = append(want, line)
		}
		if err != nil {
			t.Fatalf("name %q value %q: %v", name, value, err)
		}
		slices.Sort(want)
		if !slices.Equal(out.Env, want) {
			t.Fatalf("name %q value %q: got env %q, want %q", name, value, out.Env, want)
		}
	})
}
