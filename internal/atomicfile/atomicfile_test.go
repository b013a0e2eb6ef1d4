package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// entries fails unless dir holds exactly want: no temporary file is left.
func entries(t *testing.T, dir string, want ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("dir holds %q, want %q", got, want)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if changed, err := Write(p, []byte("one"), 0o600, nil); err != nil || !changed {
		t.Fatalf("first write: %t, %v", changed, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	// Equal bytes: not rewritten (every write renames a new inode into
	// place, so the inode alone tells a rewrite); a wrong mode is fixed.
	ino := inode(t, p)
	if changed, err := Write(p, []byte("one"), 0o640, nil); err != nil || changed {
		t.Errorf("equal bytes: changed %t, %v", changed, err)
	}
	if inode(t, p) != ino {
		t.Error("equal bytes were rewritten")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode())
	}
	if changed, err := Write(p, []byte("two"), 0o600, nil); err != nil || !changed || inode(t, p) == ino {
		t.Errorf("new bytes: changed %t, %v, same inode %t", changed, err, inode(t, p) == ino)
	}
	entries(t, dir, "token")
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should go makes the rename fail.
	if err := os.MkdirAll(filepath.Join(dir, "b.txt", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Write(filepath.Join(dir, "b.txt"), []byte("s3cr3t"), 0o600, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "write b.txt: rename into place: ") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("got %v, want an error naming b.txt", err)
	}
	entries(t, dir, "b.txt")
}

func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root; CI runs as root")
	}
	dir := filepath.Join(t.TempDir(), "render")
	owner := &Owner{UID: 65534, GID: 65534}
	if err := MkdirPrivate(dir, owner); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "f")
	if _, err := Write(p, []byte("x"), 0o600, owner); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, p} {
		st, _ := os.Stat(path)
		if s := st.Sys().(*syscall.Stat_t); s.Uid != 65534 || s.Gid != 65534 {
			t.Errorf("%s owned by %d:%d, want 65534:65534", path, s.Uid, s.Gid)
		}
	}
}

func TestMkdirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(dir, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode())
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := MkdirPrivate(filepath.Join(f, "sub"), nil); err == nil || !strings.Contains(err.Error(), "create directory") {
		t.Errorf("under a file: %v", err)
	}
}
