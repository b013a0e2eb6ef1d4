package refresh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// source is a Reader of secrets set by the test; nil data is Vault down.
type source struct {
	mu    sync.Mutex
	data  map[string]map[string]any
	reads int
}

func (s *source) put(name string, data map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = map[string]map[string]any{}
	}
	s.data[name] = data
}

func (s *source) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = nil
}

func (s *source) Renew(_ context.Context, l *vault.Lease) (*vault.Lease, error) {
	return l, nil
}

func (s *source) Revoke(context.Context, *vault.Lease) error { return nil }

func (s *source) ReadAll(_ context.Context, refs []vault.Ref) ([]*vault.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.data == nil {
		return nil, sysexits.Wrap(sysexits.Unavailable, errors.New("read secret app: cannot reach Vault: connection refused"))
	}
	var out []*vault.Secret
	for _, r := range refs {
		out = append(out, &vault.Secret{Name: r.Name, Path: r.Path, Data: s.data[r.Name]})
	}
	return out, nil
}

// newRefresher renders templates (name -> text) for the one secret "app".
func newRefresher(t *testing.T, src Reader, templates map[string]string) (*Refresher, string) {
	t.Helper()
	tdir, rdir := t.TempDir(), filepath.Join(t.TempDir(), "out")
	for name, text := range templates {
		writeFile(t, filepath.Join(tdir, name), text)
	}
	r := New(Options{
		Secrets:    []vault.Ref{{Name: "app", Path: "aionos/dev/app"}},
		Label:      "dev",
		Templates:  render.Options{TemplatesDir: tdir, RenderDir: rdir, Secrets: []string{"app"}},
		HostFields: []string{"host"},
		RestartOn:  "host",
	}, src)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	return r, rdir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ino(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func refresh(t *testing.T, r *Refresher, due Due) Decision {
	t.Helper()
	d, err := r.Refresh(context.Background(), due)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return d
}

func TestOnePassStartReloadRestartNothing(t *testing.T) {
	src := &source{}
	src.put("app", map[string]any{"host": "db1", "password": "one"})
	r, rdir := newRefresher(t, src, map[string]string{
		"app.env.tmpl":     "PGHOST={{ .app.host }}\nPGPASSWORD={{ .app.password }}\n",
		"creds.json.tmpl":  `{"password": {{ toJSON .app.password }}}`,
		"static.conf.tmpl": "env {{ .env }}\n",
	})
	d := refresh(t, r, All)
	if d.Action != Start || !slices.Equal(d.Env, []string{"PGHOST=db1", "PGPASSWORD=one"}) {
		t.Fatalf("first pass: %s %q", d.Action, d.Env)
	}
	creds, static := filepath.Join(rdir, "creds.json"), filepath.Join(rdir, "static.conf")
	if b, _ := os.ReadFile(creds); string(b) != `{"password": "one"}` {
		t.Errorf("creds.json = %q", b)
	}
	if fi, _ := os.Stat(rdir); fi.Mode().Perm() != 0o700 {
		t.Errorf("render dir mode %v, want 0700", fi.Mode())
	}
	staticIno := ino(t, static)

	if d := refresh(t, r, Due{Static: true}); d.Action != None {
		t.Errorf("same data: %s, want nothing", d.Action)
	}
	src.put("app", map[string]any{"host": "db1", "password": "two"})
	d = refresh(t, r, Due{Static: true})
	if d.Action != Reload || d.Change.String() != "secret app changed [password]; env [PGPASSWORD]; files [creds.json]" {
		t.Errorf("password: %s, %q", d.Action, d.Change)
	}
	if b, _ := os.ReadFile(creds); string(b) != `{"password": "two"}` {
		t.Errorf("creds.json = %q after the rotation", b)
	}
	if ino(t, static) != staticIno {
		t.Error("static.conf was rewritten though its bytes did not change")
	}
	src.put("app", map[string]any{"host": "db2", "password": "two"})
	if d := refresh(t, r, Due{Static: true}); d.Action != Restart || d.Env[0] != "PGHOST=db2" {
		t.Errorf("host: %s %q", d.Action, d.Env)
	}
}

func TestFailedPassKeepsTheLastGoodRender(t *testing.T) {
	src := &source{}
	src.put("app", map[string]any{"password": "one"})
	r, rdir := newRefresher(t, src, map[string]string{"creds.json.tmpl": `{"p": {{ toJSON .app.password }}}`})
	refresh(t, r, All)
	creds := filepath.Join(rdir, "creds.json")

	src.down()
	if _, err := r.Refresh(context.Background(), Due{Static: true}); !vault.Transient(err) && sysexits.Code(err) != sysexits.Unavailable {
		t.Errorf("Vault down: %v", err)
	}
	// A template edited into an error: nothing written, the old file stays.
	writeFile(t, filepath.Join(r.opts.Templates.TemplatesDir, "creds.json.tmpl"), `{"p": {{ toJSON .app.nokey }}}`)
	src.put("app", map[string]any{"password": "two"})
	if _, err := r.Refresh(context.Background(), Due{Static: true, Templates: true}); err == nil || !strings.Contains(err.Error(), "secret app has no key nokey") {
		t.Errorf("broken template: %v", err)
	}
	if b, _ := os.ReadFile(creds); string(b) != `{"p": "one"}` {
		t.Errorf("creds.json = %q, want the last good render", b)
	}
	// Check refuses the environment: the last good render stays too.
	r.opts.Check = func([]string) error { return errors.New("too big") }
	writeFile(t, filepath.Join(r.opts.Templates.TemplatesDir, "creds.json.tmpl"), `{"p": {{ toJSON .app.password }}}`)
	if _, err := r.Refresh(context.Background(), Due{Templates: true}); err == nil || err.Error() != "too big" {
		t.Errorf("check: %v", err)
	}
	r.opts.Check = nil
	if d := refresh(t, r, All); d.Action != Reload {
		t.Errorf("fixed: %s", d.Action)
	}
	if b, _ := os.ReadFile(creds); string(b) != `{"p": "two"}` {
		t.Errorf("creds.json = %q after the fix", b)
	}
}

func TestWriteFailureIsNotApplied(t *testing.T) {
	src := &source{}
	src.put("app", map[string]any{"password": "one"})
	r, rdir := newRefresher(t, src, map[string]string{"creds.json.tmpl": `{"p": {{ toJSON .app.password }}}`})
	refresh(t, r, All)
	// A directory where the file should go makes its rename fail.
	os.Remove(filepath.Join(rdir, "creds.json"))
	if err := os.MkdirAll(filepath.Join(rdir, "creds.json", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	src.put("app", map[string]any{"password": "two"})
	_, err := r.Refresh(context.Background(), Due{Static: true})
	if sysexits.Code(err) != sysexits.CantCreate || !strings.Contains(err.Error(), "write creds.json") {
		t.Errorf("got %v, want a can't-create error naming creds.json", err)
	}
	// Not applied, so the next pass tries again.
	os.RemoveAll(filepath.Join(rdir, "creds.json"))
	if d := refresh(t, r, Due{Static: true}); d.Action != Reload {
		t.Errorf("retry: %s", d.Action)
	}
}

// notifying is a Reader that tells the test about every read.
type notifying struct {
	*source
	read chan<- struct{}
}

func (n *notifying) ReadAll(ctx context.Context, refs []vault.Ref) ([]*vault.Secret, error) {
	defer func() { n.read <- struct{}{} }()
	return n.source.ReadAll(ctx, refs)
}
