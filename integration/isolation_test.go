//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// public is a directory every user may enter, holding copies of what an
// unprivileged aion-exec needs: its binary and Vault's CA.
func public(t *testing.T, v *Vault) (dir, bin, ca string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "aion-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, ca = filepath.Join(dir, "aion-exec"), filepath.Join(dir, "ca.pem")
	for from, to := range map[string]string{aionBin: bin, v.CACert: ca} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, bin, ca
}

// A child of the same unprivileged uid cannot read aion-exec's environment
// (which holds its token) from /proc: aion-exec is non-dumpable.
func TestChildCannotReadOurEnviron(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	dir, bin, ca := public(t, v)
	render := filepath.Join(dir, "render")
	tok := v.Token([]string{"svc"}, "1h", true)
	env := append(baseEnv(), "AION_VAULT_ADDR="+v.Addr, "AION_VAULT_TOKEN="+tok, "AION_VAULT_CACERT="+ca,
		"AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_RENDER_DIR="+render, "HOME="+dir)
	if err := os.Mkdir(render, 0o700); err != nil || os.Chown(render, 65534, 65534) != nil {
		t.Fatal(err)
	}
	child := `id -u; if cat /proc/$PPID/environ >/dev/null 2>&1; then echo environ-readable; else echo environ-denied; fi`
	r := runIn(t, dir, env, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "--", "sh", "-c", child)
	if r.Code != 0 || r.Stdout != "65534\nenviron-denied\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertNoSecrets(t, r.Stdout, tok)
}

// With AION_CHILD_USER the child runs as that user and group, reads its
// rendered files, and cannot open aion-exec's token file.
func TestChildUser(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(v.Token([]string{"svc"}, "1h", true)), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := t.TempDir()
	write(t, filepath.Join(tmpl, "creds.json.tmpl"), `{"password": {{ toJSON .db.password }}}`)
	// The render directory's parent must let the child's user through,
	// as /run does for the default /run/aion-exec.
	dir, _, _ := public(t, v)
	render := filepath.Join(dir, "render")
	env := append(v.addrEnv(), "AION_VAULT_TOKEN_FILE="+tokenFile, "AION_DB_SECRET_PATH=aionos/dev/db-main",
		"AION_TEMPLATES_DIR="+tmpl, "AION_RENDER_DIR="+render, "AION_CHILD_USER=65534:65534")
	child := `id -u; id -g; id -G; cat "$0/creds.json" >/dev/null && echo rendered-readable; ` +
		`if cat "$1" >/dev/null 2>&1; then echo token-readable; else echo token-denied; fi; echo "HOME=$HOME"`
	r := aion(t, env, "--", "sh", "-c", child, render, tokenFile)
	// nobody's home, as /etc/passwd has it.
	if r.Code != 0 || r.Stdout != "65534\n65534\n65534\nrendered-readable\ntoken-denied\nHOME=/nonexistent\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for p, mode := range map[string]os.FileMode{render: 0o700, filepath.Join(render, "creds.json"): 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm() != mode {
			t.Errorf("%s: owner %d:%d mode %v, want 65534:65534 %v", p, st.Uid, st.Gid, fi.Mode().Perm(), mode)
		}
	}
	// A render directory the user cannot reach is refused at start.
	r = aion(t, replaceEnv(env, "AION_RENDER_DIR", filepath.Join(t.TempDir(), "render")), "--", "true")
	if lines := aionLines(r.Stderr); r.Code != 64 || len(lines) != 1 || !strings.Contains(lines[0], "AION_CHILD_USER 65534:65534 (65534:65534) cannot reach it") {
		t.Errorf("unreachable render dir: exit %d\n%s", r.Code, r.Stderr)
	}
	// A spec that names nobody is one line naming the setting, before any
	// request to Vault.
	start := time.Now()
	r = aion(t, replaceEnv(env, "AION_CHILD_USER", "no-such-user-here"), "--", "true")
	if lines := aionLines(r.Stderr); r.Code != 64 || len(lines) != 1 || !strings.Contains(lines[0], "AION_CHILD_USER") || time.Since(start) > 10*time.Second {
		t.Errorf("unknown user: exit %d\n%s", r.Code, r.Stderr)
	}
}
