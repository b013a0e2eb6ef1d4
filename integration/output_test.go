//go:build integration

package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AION_MASK_OUTPUT: what the child prints of a secret reaches the terminal
// as <concealed:NAME>, split across writes or not.
func TestMaskOutput(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	env := append(tokenEnv(v, rootToken), "AION_DB_SECRET_PATH=aionos/dev/db-main", "AION_MASK_OUTPUT=true",
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"))
	// The password in two writes, with a pause between them.
	child := `printf 'pw=%s\n' "$PGPASSWORD"; p="$PGPASSWORD"; printf '%s' "${p%????????}"; sleep 0.2; printf '%s\n' "${p#"${p%????????}"}"; echo "user=$PGUSER" >&2`
	r := aion(t, env, "--", "sh", "-c", child)
	// PGUSER and PGDATABASE are both aionos: either name may show.
	if r.Code != 0 || r.Stdout != "pw=<concealed:PGPASSWORD>\n<concealed:PGPASSWORD>\n" || !strings.Contains(r.Stderr, "user=<concealed:PG") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertNoSecrets(t, r.Stdout+r.Stderr)
}

// A value too big for the kernel's exec limits is refused before any fork,
// naming the variable and its size, never the value.
func TestOversizedVariableRefusedBeforeFork(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	big := strings.Repeat("k", 200<<10)
	v.KVPut("secret", "app/blob", map[string]any{"key": big})
	tmpl := t.TempDir()
	write(t, filepath.Join(tmpl, "app.env.tmpl"), "APP_KEY={{ .blob.key }}\n")
	env := append(tokenEnv(v, rootToken), "AION_BLOB_SECRET_PATH=app/blob", "AION_TEMPLATES_DIR="+tmpl,
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"))
	r := aion(t, env, "--", "sh", "-c", "echo child-started")
	lines := aionLines(r.Stderr)
	if r.Code != 65 || len(lines) != 1 || !strings.Contains(lines[0], "APP_KEY") || !strings.Contains(lines[0], ".tmpl") ||
		strings.Contains(r.Stdout, "child-started") || strings.Contains(r.Stderr, big[:64]) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%.2000s", r.Code, r.Stdout, r.Stderr)
	}
}

// A value that grows too big for exec while the child runs: the child
// keeps running on the last good render, the error is logged once however
// many polls meet it, and a value that fits again is rendered.
func TestOversizedVariableWhileRunning(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "app/blob", map[string]any{"key": "small-1"})
	tmpl := t.TempDir()
	write(t, filepath.Join(tmpl, "app.env.tmpl"), "APP_KEY={{ .blob.key }}\n")
	env := append(tokenEnv(v, rootToken), "AION_BLOB_SECRET_PATH=app/blob", "AION_TEMPLATES_DIR="+tmpl,
		"AION_RENDER_DIR="+filepath.Join(t.TempDir(), "out"), "AION_POLL_INTERVAL=200ms", "AION_RESTART_ON=env",
		"CHILD_ENV=APP_KEY")
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	big := strings.Repeat("k", 200<<10)
	v.KVPut("secret", "app/blob", map[string]any{"key": big})
	first := r.stderr.waitFor(t, "environment too large to exec: APP_KEY", 10*time.Second)
	for range 5 { // polls that meet the same oversized value
		r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	}
	if !alive(pid) {
		t.Fatalf("child %d gone after an oversized value", pid)
	}
	v.KVPut("secret", "app/blob", map[string]any{"key": "small-2"})
	restarted := r.stdout.waitFor(t, "ready", 10*time.Second)
	if !strings.Contains(restarted, "small-2") {
		t.Errorf("after the value fits again: %s", restarted)
	}
	logs := r.stderr.text()
	if n := strings.Count(logs, "environment too large"); n != 1 || strings.Contains(logs, big[:64]) {
		t.Errorf("want the oversized APP_KEY logged once (%q), got %d times:\n%.3000s", first, n, logs)
	}
	if strings.Count(r.stdout.text(), "ready") != 2 {
		t.Errorf("want one start and one restart:\n%s", r.stdout.text())
	}
}
