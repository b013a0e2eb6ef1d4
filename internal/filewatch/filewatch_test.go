package filewatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// An editor's save (write a temporary file, rename it over the original)
// and a Kubernetes ..data swap are both seen through the directory.
func TestRenameIntoPlaceIsSeen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Start(context.Background(), quiet, DirsOf(file), Files(file))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	tmp := filepath.Join(dir, ".token.swp")
	if err := os.WriteFile(tmp, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatal("no notice of the renamed file within 10s")
	}
}

func TestFilesMatchesTheFileAndItsDataSwap(t *testing.T) {
	m := Files("/run/secrets/token", "")
	for path, want := range map[string]bool{
		"/run/secrets/token": true, "/run/secrets/..data": true,
		"/run/secrets/other": false, "/run/..data": false, "": false,
	} {
		if got := m(path); got != want {
			t.Errorf("Files match %q = %v, want %v", path, got, want)
		}
	}
}

func TestStartNamesTheDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := Start(context.Background(), quiet, []string{missing}, Dir(missing))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want one naming %s", err, missing)
	}
}

// BenchmarkStop is what a watch costs aion-exec's exit: closing an inotify
// instance that holds a watch waits for the kernel's SRCU grace period
// (fsnotify_destroy_group), milliseconds on a loaded machine, on the path
// from the child's exit to aion-exec's.
func BenchmarkStop(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		w, err := Start(context.Background(), quiet, []string{dir}, Dir(dir))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		w.Stop()
	}
}

// logs is a logger whose lines a test can wait for: the message and the
// dir it names.
type logs chan string

func (l logs) Enabled(context.Context, slog.Level) bool { return true }
func (l logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logs) WithGroup(string) slog.Handler            { return l }
func (l logs) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l <- line
	return nil
}

// waitFor reads lines until one contains want, and returns them all.
func (l logs) waitFor(t *testing.T, want string) []string {
	t.Helper()
	var seen []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-l:
			seen = append(seen, line)
			if strings.Contains(line, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no log line %q within 10s; saw %q", want, seen)
		}
	}
}

// rest is every line logged so far and not yet read.
func (l logs) rest() []string {
	var seen []string
	for {
		select {
		case line := <-l:
			seen = append(seen, line)
		default:
			return seen
		}
	}
}

func notice(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notice of %s within 10s", what)
	}
}

// count is the number of lines that contain s.
func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// lostAndBack checks that the directory's loss and its return were logged
// once each, naming it.
func lostAndBack(t *testing.T, lines []string, dir string) {
	t.Helper()
	for _, want := range []string{"watched directory is gone", "watched directory is back"} {
		if n := count(lines, want); n != 1 {
			t.Errorf("%d lines %q, want 1:\n%s", n, want, strings.Join(lines, "\n"))
		}
	}
	for _, l := range lines {
		if !strings.Contains(l, "dir="+dir) {
			t.Errorf("%q does not name %s", l, dir)
		}
	}
}

// A templates directory removed and made again (rm -rf; mkdir) is watched
// again: its return is a change, and later edits are seen.
func TestRemovedDirectoryIsWatchedAgain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "templates")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	log := make(logs, 100)
	w, err := Start(context.Background(), slog.New(log), []string{dir}, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	seen := log.waitFor(t, "watched directory is gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	seen = append(seen, log.waitFor(t, "watched directory is back")...)
	notice(t, w, "the directory's return")
	if err := os.WriteFile(filepath.Join(dir, "app.env.tmpl"), []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "a template written in the new directory")
	lostAndBack(t, append(seen, log.rest()...), dir)
}

// The directory of a token file moved away and replaced by another, as a
// deploy tool does (build it aside, rename it into place): the new token
// is a change, and so is its next rotation.
func TestMovedAwayDirectoryIsWatchedAgain(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "secrets")
	file := filepath.Join(dir, "token")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := make(logs, 100)
	w, err := Start(context.Background(), slog.New(log), DirsOf(file), Files(file))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := os.Rename(dir, filepath.Join(root, "secrets.old")); err != nil {
		t.Fatal(err)
	}
	seen := log.waitFor(t, "watched directory is gone")
	next := filepath.Join(root, "secrets.new")
	if err := os.Mkdir(next, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next, "token"), []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	seen = append(seen, log.waitFor(t, "watched directory is back")...)
	notice(t, w, "the directory's return")
	if err := os.WriteFile(file, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	notice(t, w, "the token rewritten in the new directory")
	lostAndBack(t, append(seen, log.rest()...), dir)
}

// linked is a watch of a symlink to directory a, rechecked every 20 ms;
// relink switches the symlink to target atomically (ln -sfn, then mv -T).
type linked struct {
	link, a, b string
	w          *Watcher
	log        logs
}

func watchLink(t *testing.T) *linked {
	t.Helper()
	root := t.TempDir()
	l := &linked{link: filepath.Join(root, "current"), a: filepath.Join(root, "a"), b: filepath.Join(root, "b"), log: make(logs, 100)}
	for _, d := range []string{l.a, l.b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(l.a, l.link); err != nil {
		t.Fatal(err)
	}
	var err error
	if l.w, err = start(context.Background(), slog.New(l.log), []string{l.link}, Dir(l.link), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.w.Stop)
	return l
}

func (l *linked) relink(t *testing.T, target string) {
	t.Helper()
	tmp := l.link + ".tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, l.link); err != nil {
		t.Fatal(err)
	}
}

// A path that is a symlink switched to another directory (a release
// directory, `ln -sfn`) gives inotify nothing to report: the recheck
// finds another directory at the path and watches it.
func TestSwitchedSymlinkIsWatchedAgain(t *testing.T) {
	l := watchLink(t)
	l.relink(t, l.b)
	seen := l.log.waitFor(t, "watched directory is back")
	notice(t, l.w, "the switch")
	if err := os.WriteFile(filepath.Join(l.b, "app.env.tmpl"), []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notice(t, l.w, "a template written in the new target")
	lostAndBack(t, append(seen, l.log.rest()...), l.link)
}

// A path that is back but cannot be watched (here a symlink loop; in life
// the inotify watch limit or a permission) says why, once, rather than
// claim that it waits for the directory.
func TestUnwatchableReturnSaysWhy(t *testing.T) {
	l := watchLink(t)
	l.relink(t, filepath.Base(l.link)) // itself
	seen := l.log.waitFor(t, "watch the directory again failed")
	if line := seen[len(seen)-1]; !strings.Contains(line, "too many levels of symbolic links") || !strings.Contains(line, "dir="+l.link) {
		t.Errorf("failure line %q does not say why, or of what", line)
	}
	l.relink(t, l.a)
	seen = append(seen, l.log.waitFor(t, "watched directory is back")...)
	notice(t, l.w, "the return")
	seen = append(seen, l.log.rest()...)
	lostAndBack(t, seen, l.link)
	if n := count(seen, "watch the directory again failed"); n != 1 {
		t.Errorf("%d failure lines, want 1:\n%s", n, strings.Join(seen, "\n"))
	}
}
