package render

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

func fileOut(dir string, files map[string]string) *Output {
	out := &Output{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		out.Files = append(out.Files, File{Name: name, Path: filepath.Join(dir, name), Data: []byte(files[name]), Mode: 0o600})
	}
	return out
}

// noTemp fails when anything but want is in dir.
func noTemp(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("dir holds %q, want %q", got, want)
	}
}

func inode(t *testing.T, path string) (uint64, time.Time) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "render")
	written, err := fileOut(dir, map[string]string{"a.json": `{"a": 1}`, "token": "t"}).WriteFiles()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.json", "token"}; !slices.Equal(written, want) {
		t.Errorf("written = %q, want %q", written, want)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("render dir: %v, mode %v; want 0700", err, fi.Mode())
	}
	for name, want := range map[string]string{"a.json": `{"a": 1}`, "token": "t"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		fi, _ := os.Stat(filepath.Join(dir, name))
		if err != nil || string(got) != want || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q, %v, mode %v; want %q, mode 0600", name, got, err, fi.Mode(), want)
		}
	}

	// Unchanged: not rewritten, same inode and mtime. Every write renames a
	// new file into place, so the inode alone tells a rewrite, no clock needed.
	ino, mtime := inode(t, filepath.Join(dir, "token"))
	written, err = fileOut(dir, map[string]string{"a.json": `{"a": 2}`, "token": "t"}).WriteFiles()
	if err != nil || !slices.Equal(written, []string{"a.json"}) {
		t.Errorf("second write: written %q, %v; want [a.json]", written, err)
	}
	if ino2, mtime2 := inode(t, filepath.Join(dir, "token")); ino2 != ino || !mtime2.Equal(mtime) {
		t.Errorf("unchanged token was rewritten")
	}

	// Mode alone changed: rewritten.
	out := fileOut(dir, map[string]string{"a.json": `{"a": 2}`, "token": "t"})
	out.Files[1].Mode = 0o640
	if written, err := out.WriteFiles(); err != nil || !slices.Equal(written, []string{"token"}) {
		t.Errorf("mode change: written %q, %v; want [token]", written, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "token")); fi.Mode().Perm() != 0o640 {
		t.Errorf("token mode = %v, want 0640", fi.Mode())
	}
	noTemp(t, dir, "a.json", "token")
}

func TestWriteFilesValidatesAllFirst(t *testing.T) {
	dir := t.TempDir()
	if _, err := fileOut(dir, map[string]string{"a.json": `{"a": 1}`, "b.txt": "old"}).WriteFiles(); err != nil {
		t.Fatal(err)
	}
	// b.txt sorts after a.json, so a half-done write would have replaced it.
	written, err := fileOut(dir, map[string]string{"a.json": `{"a": "Secret-Value-1"`, "b.txt": "new"}).WriteFiles()
	if sysexits.Code(err) != sysexits.DataErr || !strings.Contains(err.Error(), "write files: a.json is not valid JSON (syntax error at byte 22)") {
		t.Errorf("got %v, want a data error naming a.json", err)
	}
	if strings.Contains(err.Error(), "Secret-Value-1") || len(written) != 0 {
		t.Errorf("error %q, written %q", err, written)
	}
	for name, want := range map[string]string{"a.json": `{"a": 1}`, "b.txt": "old"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
			t.Errorf("%s = %q, want the old %q", name, got, want)
		}
	}
	noTemp(t, dir, "a.json", "b.txt")
}

func TestWriteFilesFailure(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should go makes the rename fail.
	if err := os.MkdirAll(filepath.Join(dir, "b.txt", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	written, err := fileOut(dir, map[string]string{"a.txt": "a", "b.txt": "b"}).WriteFiles()
	if sysexits.Code(err) != sysexits.CantCreate || !strings.Contains(err.Error(), "write b.txt: ") {
		t.Errorf("got %v, want a can't-create error naming b.txt", err)
	}
	if !slices.Equal(written, []string{"a.txt"}) {
		t.Errorf("written = %q, want [a.txt]", written)
	}
	noTemp(t, dir, "a.txt", "b.txt")

	// The render dir cannot be created under a regular file.
	_, err = fileOut(filepath.Join(dir, "a.txt", "sub"), map[string]string{"c": "c"}).WriteFiles()
	if sysexits.Code(err) != sysexits.CantCreate || !strings.Contains(err.Error(), "create render dir") {
		t.Errorf("got %v, want a can't-create error for the render dir", err)
	}
}

func TestValidate(t *testing.T) {
	const block = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
	cases := []struct{ name, data, err string }{
		{"x.json", `{"a": [1, 2]}`, ""},
		{"x.json", "\"s\"\n", ""},
		{"x.json", `{"a": }`, "x.json is not valid JSON (syntax error at byte 7)"},
		{"x.json", ``, "x.json is not valid JSON (syntax error at byte 0)"},
		{"x.pem", block, ""},
		{"x.pem", "\n" + block + "\n  " + block, ""},
		{"x.pem", "", "x.pem holds no PEM block"},
		{"x.pem", "junk\n" + block, "x.pem holds data that is not a PEM block"},
		{"x.pem", block + "junk", "x.pem holds data that is not a PEM block"},
		{"x.pem", "-----BEGIN X-----\nnot ended", "x.pem holds a malformed PEM block"},
		{"x.txt", "anything", ""},
		{"x.env", "not checked: X.env.tmpl is an env template, never a file", ""},
	}
	for _, c := range cases {
		err := validate(c.name, []byte(c.data))
		if got := errString(err); got != c.err {
			t.Errorf("validate(%s, %q) = %q, want %q", c.name, c.data, got, c.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
