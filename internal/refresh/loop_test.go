package refresh

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// running is a Refresher's Run under test, with what it applies.
type running struct {
	applied chan Decision
	src     *source
	polled  chan struct{}
}

func startLoop(t *testing.T, tmpl string) (*running, *Refresher) {
	t.Helper()
	src := &source{}
	src.put("app", map[string]any{"host": "db1", "password": "one"})
	rn := &running{applied: make(chan Decision, 10), src: src, polled: make(chan struct{}, 100)}
	r, _ := newRefresher(t, &notifying{src, rn.polled}, map[string]string{"svc.env.tmpl": tmpl})
	r.opts.Interval = 100 * time.Millisecond
	r.opts.ReloadName = "SIGHUP"
	r.opts.Log = slog.New(slog.DiscardHandler)
	refresh(t, r, All)
	ctx, cancel := context.WithCancel(context.Background())
	// As a supervised run does: the watch first, before the child.
	if err := r.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx, func(d Decision) { rn.applied <- d }); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-rn.polled // the first pass
	return rn, r
}

func (rn *running) waitPolls(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-rn.polled:
		case <-time.After(5 * time.Second):
			t.Fatal("no poll")
		}
	}
}

func (rn *running) next(t *testing.T) Decision {
	t.Helper()
	select {
	case d := <-rn.applied:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("nothing applied")
		return Decision{}
	}
}

func (rn *running) none(t *testing.T) {
	t.Helper()
	select {
	case d := <-rn.applied:
		t.Fatalf("unexpected %s", d.Action)
	default:
	}
}

func TestRunRotationReloadsAndHostRestarts(t *testing.T) {
	rn, _ := startLoop(t, "PGHOST={{ .app.host }}\nPGPASSWORD={{ .app.password }}\n")
	rn.waitPolls(t, 3)
	rn.none(t)

	rn.src.put("app", map[string]any{"host": "db1", "password": "two"})
	if d := rn.next(t); d.Action != Reload {
		t.Fatalf("password change: %s", d.Action)
	}
	rn.waitPolls(t, 3)
	rn.none(t)

	rn.src.put("app", map[string]any{"host": "db2", "password": "two"})
	if d := rn.next(t); d.Action != Restart || d.Env[0] != "PGHOST=db2" {
		t.Fatalf("host change: %s %v", d.Action, d.Env)
	}
}

func TestRunOutageAndBrokenTemplateKeepLastGood(t *testing.T) {
	rn, r := startLoop(t, "PGPASSWORD={{ .app.password }}\n")
	rn.src.down()
	rn.waitPolls(t, 2)
	rn.none(t)
	rn.src.put("app", map[string]any{"host": "db1", "password": "one"})

	// A template edited into an error: nothing applied; fixed: applied,
	// within the debounce and long before the next poll matters.
	dir := r.opts.Templates.TemplatesDir
	writeFile(t, filepath.Join(dir, "svc.env.tmpl"), "PGPASSWORD={{ .app.nokey }}\n")
	rn.waitPolls(t, 3)
	rn.none(t)
	writeFile(t, filepath.Join(dir, "svc.env.tmpl"), "PGPASSWORD={{ .app.password }}\nX=1\n")
	if d := rn.next(t); d.Action != Reload {
		t.Fatalf("template fixed: %s", d.Action)
	}
}

func TestRunFailsWhenTemplatesCannotBeWatched(t *testing.T) {
	r, _ := newRefresher(t, &source{}, nil)
	r.opts.Templates.TemplatesDir = filepath.Join(t.TempDir(), "gone")
	r.opts.Interval = time.Hour
	err := r.Run(context.Background(), func(Decision) {})
	if err == nil || !strings.Contains(err.Error(), "AION_TEMPLATES_DIR") {
		t.Fatalf("Run = %v, want an error naming the directory", err)
	}
}

// A supervised run starts the watch before the child: Watch fails as Run
// would, with the same line and exit code.
func TestWatchFailsBeforeRun(t *testing.T) {
	r, _ := newRefresher(t, &source{}, nil)
	r.opts.Templates.TemplatesDir = filepath.Join(t.TempDir(), "gone")
	err := r.Watch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "AION_TEMPLATES_DIR") || sysexits.Code(err) != sysexits.Usage {
		t.Fatalf("Watch = %v (exit %d), want an error naming the directory, exit 64", err, sysexits.Code(err))
	}
}
