package watch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/render"
)

func TestDecide(t *testing.T) {
	pw := render.Change{Secrets: []string{"db"}, EnvChanged: []string{"PGPASSWORD"}}
	host := render.Change{Secrets: []string{"db"}, HostChanged: true, EnvChanged: []string{"PGHOST"}}
	fileOnly := render.Change{Secrets: []string{"db"}, FilesChanged: []string{"creds.json"}}
	unused := render.Change{Secrets: []string{"db"}, HostChanged: true} // nothing rendered changed
	tests := []struct {
		name   string
		c      render.Change
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
		{"nothing", render.Change{}, "host", None},
	}
	for _, tt := range tests {
		if got := Decide(tt.c, tt.policy); got != tt.want {
			t.Errorf("%s: Decide = %s, want %s", tt.name, got, tt.want)
		}
	}
}

type applied struct {
	a   Action
	env []string
}

// harness drives a Loop with data from a channel and records what it applies.
type harness struct {
	reads   chan render.Data
	polled  chan struct{}
	applied chan applied
	dir     string
	loop    *Loop
}

func newHarness(t *testing.T, tmpl string) (*harness, *render.Set) {
	t.Helper()
	h := &harness{reads: make(chan render.Data, 1), polled: make(chan struct{}, 100), applied: make(chan applied, 10), dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(h.dir, "svc.env.tmpl"), []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := render.Options{TemplatesDir: h.dir, RenderDir: filepath.Join(t.TempDir(), "out"), Secrets: []string{"app"}}
	set, err := render.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	var last render.Data
	h.loop = &Loop{
		Interval:   100 * time.Millisecond,
		RestartOn:  "host",
		HostFields: []string{"host"},
		ReloadName: "SIGHUP",
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Read: func(ctx context.Context) (render.Data, error) {
			defer func() { h.polled <- struct{}{} }()
			select {
			case d := <-h.reads:
				if d == nil {
					return nil, errors.New("vault down")
				}
				last = d
			default:
			}
			return last, nil
		},
		Load:         func() (*render.Set, error) { return render.Load(opts) },
		Apply:        func(a Action, env []string) { h.applied <- applied{a, env} },
		TemplatesDir: h.dir,
	}
	return h, set
}

func db(host, pw string) render.Data {
	return render.Data{"env": "dev", "app": map[string]any{"host": host, "password": pw}}
}

func (h *harness) start(t *testing.T, set *render.Set, d render.Data) {
	t.Helper()
	out, err := set.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	h.reads <- d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.loop.Run(ctx, set, d, out) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (h *harness) waitPolls(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.polled:
		case <-time.After(5 * time.Second):
			t.Fatal("no poll")
		}
	}
}

func (h *harness) next(t *testing.T) applied {
	t.Helper()
	select {
	case a := <-h.applied:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("nothing applied")
		return applied{}
	}
}

func (h *harness) none(t *testing.T) {
	t.Helper()
	select {
	case a := <-h.applied:
		t.Fatalf("unexpected %s", a.a)
	default:
	}
}

func TestLoopRotationReloadsAndHostRestarts(t *testing.T) {
	h, set := newHarness(t, "PGHOST={{ .app.host }}\nPGPASSWORD={{ .app.password }}\n")
	h.start(t, set, db("db1", "one"))
	h.waitPolls(t, 3)
	h.none(t)

	h.reads <- db("db1", "two")
	if a := h.next(t); a.a != Reload {
		t.Fatalf("password change: %s", a.a)
	}
	h.waitPolls(t, 3)
	h.none(t)

	h.reads <- db("db2", "two")
	a := h.next(t)
	if a.a != Restart || a.env[0] != "PGHOST=db2" {
		t.Fatalf("host change: %s %v", a.a, a.env)
	}
}

func TestLoopOutageAndBrokenTemplateKeepLastGood(t *testing.T) {
	h, set := newHarness(t, "PGPASSWORD={{ .app.password }}\n")
	h.start(t, set, db("db1", "one"))
	h.reads <- nil // Vault down for a poll
	h.waitPolls(t, 3)
	h.none(t)

	// A template edited into an error: nothing applied; fixed: applied.
	if err := os.WriteFile(filepath.Join(h.dir, "svc.env.tmpl"), []byte("PGPASSWORD={{ .app.nokey }}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitPolls(t, 3)
	h.none(t)
	if err := os.WriteFile(filepath.Join(h.dir, "svc.env.tmpl"), []byte("PGPASSWORD={{ .app.password }}\nX=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a := h.next(t); a.a != Reload {
		t.Fatalf("template fixed: %s", a.a)
	}
}
