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
