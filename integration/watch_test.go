//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// running is an aion-exec process supervising a child.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr *lineReader
	done           chan struct{}
	code           int
}

// childJS is the signal-printing Node child.
func childJS() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "child.js")
}

// supervise starts `aion-exec -- args...` and stops it at the test's end.
func supervise(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	return superviseVia(t, env, nil, args...)
}

// superviseVia is supervise with aion-exec started by the command via
// (unshare, say), which must pass signals and stdio on.
func superviseVia(t *testing.T, env, via []string, args ...string) *running {
	t.Helper()
	argv := append(append(slices.Clone(via), aionBin, "--"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), env...)
	so, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	se, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, stdout: newLineReader(so), stderr: newLineReader(se), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("aion-exec stderr:\n%s\nchild stdout:\n%s", r.stderr.text(), r.stdout.text())
		}
	})
	return r
}

// wait returns aion-exec's exit code.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(30 * time.Second):
		t.Fatal("aion-exec did not exit")
		return 0
	}
}

var pidRE = regexp.MustCompile(`pid=(\d+)`)

func pidOf(t *testing.T, line string) int {
	t.Helper()
	m := pidRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no pid in %q", line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// watchEnv is a service with a db secret, a rotating-credentials file
// template, and a fast poll.
func watchEnv(t *testing.T, v *Vault, extra ...string) (env []string, renderDir string) {
	t.Helper()
	tmpl := t.TempDir()
	write(t, filepath.Join(tmpl, "creds.json.tmpl"), `{"password": {{ toJSON .db.password }}}`)
	renderDir = filepath.Join(t.TempDir(), "out")
	env = append(tokenEnv(v, rootToken),
		"AION_DB_SECRET_PATH=aionos/dev/db-main",
		"AION_TEMPLATES_DIR="+tmpl,
		"AION_RENDER_DIR="+renderDir,
		"AION_POLL_INTERVAL=200ms",
		"CHILD_ENV=PGHOST,PGPASSWORD,AION_VAULT_TOKEN,VAULT_TOKEN",
		"CHILD_FILE="+filepath.Join(renderDir, "creds.json"),
	)
	return append(env, extra...), renderDir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPasswordRotationSendsOneSIGHUP(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "port": 5432, "database": "app"})
	env, _ := watchEnv(t, v)
	r := supervise(t, env, "node", childJS())
	ready := r.stdout.waitFor(t, "ready", 20*time.Second)
	if !strings.Contains(ready, `PGPASSWORD="pw-1"`) || !strings.Contains(ready, "AION_VAULT_TOKEN=null") || !strings.Contains(ready, "VAULT_TOKEN=null") {
		t.Fatalf("child env: %s", ready)
	}
	pid := pidOf(t, ready)

	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db1", "port": 5432, "database": "app"})
	hup := r.stdout.waitFor(t, "sighup", 10*time.Second)
	// The file was rewritten before the signal: the child reads the new one.
	if !strings.Contains(hup, `pw-2`) || pidOf(t, hup) != pid {
		t.Fatalf("after rotation: %s (first pid %d)", hup, pid)
	}
	if l := r.stderr.waitFor(t, "secret db changed [password]", 5*time.Second); !strings.Contains(l, "→ SIGHUP") {
		t.Errorf("decision line: %s", l)
	}
	// Several more polls pass with nothing new: no second signal.
	for range 5 {
		r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	}
	if n := strings.Count(r.stdout.text(), "sighup"); n != 1 {
		t.Errorf("got %d SIGHUPs for one rotation:\n%s", n, r.stdout.text())
	}
	assertNoSecrets(t, r.stderr.text(), "pw-1", "pw-2")
}

func TestHostChangeRestartsOnce(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "port": 5432, "database": "app"})
	env, _ := watchEnv(t, v)
	r := supervise(t, env, "node", childJS())
	first := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))

	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db2", "port": 5433, "database": "app"})
	r.stdout.waitFor(t, "term pid="+strconv.Itoa(first), 10*time.Second)
	ready := r.stdout.waitFor(t, "ready", 10*time.Second)
	if alive(first) {
		t.Errorf("old child %d still alive after the new one started", first)
	}
	if !strings.Contains(ready, `PGHOST="db2"`) || pidOf(t, ready) == first {
		t.Fatalf("restarted child: %s", ready)
	}
	if l := r.stderr.waitFor(t, "secret db changed [host port]", 5*time.Second); !strings.Contains(l, "→ restart") {
		t.Errorf("decision line: %s", l)
	}
	for range 3 {
		r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	}
	if n := strings.Count(r.stdout.text(), "ready"); n != 2 {
		t.Errorf("want exactly one restart, saw %d starts", n)
	}
	if strings.Contains(r.stdout.text(), "sighup") {
		t.Errorf("a host change also sent SIGHUP:\n%s", r.stdout.text())
	}
}

func TestRestartOnEnvAndNever(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy      string
		wantRestart bool
	}{{"env", true}, {"never", false}} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			v := startVault(t)
			v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
			env, _ := watchEnv(t, v, "AION_RESTART_ON="+tc.policy)
			r := supervise(t, env, "node", childJS())
			first := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
			// A password change alters PGPASSWORD in the environment.
			v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db1", "database": "app"})
			if tc.wantRestart {
				r.stdout.waitFor(t, "term pid="+strconv.Itoa(first), 10*time.Second)
				if l := r.stdout.waitFor(t, "ready", 10*time.Second); !strings.Contains(l, `PGPASSWORD="pw-2"`) {
					t.Errorf("restarted child: %s", l)
				}
			} else {
				if l := r.stdout.waitFor(t, "sighup", 10*time.Second); pidOf(t, l) != first {
					t.Errorf("never: the child changed: %s", l)
				}
				// Even a host change only reloads.
				v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db9", "database": "app"})
				if l := r.stdout.waitFor(t, "sighup n=2", 10*time.Second); pidOf(t, l) != first {
					t.Errorf("never: the child changed: %s", l)
				}
			}
		})
	}
}

func TestTemplateEditReRendersWithinASecond(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	env, _ := watchEnv(t, v)
	env = append(env, "AION_POLL_INTERVAL=1h")
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)
	tmplDir := envValue(env, "AION_TEMPLATES_DIR")

	// An editor's save: write a temp file, rename it over the template.
	start := time.Now()
	tmp := filepath.Join(tmplDir, ".creds.json.tmpl.swp")
	write(t, tmp, `{"password": {{ toJSON .db.password }}, "user": {{ toJSON .db.username }}}`)
	if err := os.Rename(tmp, filepath.Join(tmplDir, "creds.json.tmpl")); err != nil {
		t.Fatal(err)
	}
	hup := r.stdout.waitFor(t, "sighup", 5*time.Second)
	if took := time.Since(start); took > time.Second {
		t.Errorf("template edit reached the child after %s", took)
	}
	if !strings.Contains(hup, `\"user\": \"u\"`) {
		t.Errorf("file not re-rendered: %s", hup)
	}

	// A template edited into an error keeps the last good outputs, logged once.
	write(t, filepath.Join(tmplDir, "creds.json.tmpl"), `{{ .db.nosuchkey }}`)
	r.stderr.waitFor(t, "nosuchkey", 5*time.Second)
	write(t, filepath.Join(tmplDir, "creds.json.tmpl"), `{{ .db.nosuchkey }} `)
	write(t, filepath.Join(tmplDir, "creds.json.tmpl"), `{"password": {{ toJSON .db.password }}}`)
	r.stdout.waitFor(t, "sighup n=2", 5*time.Second)
	if n := strings.Count(r.stderr.text(), "render failed"); n != 1 {
		t.Errorf("a broken template was logged %d times, want once:\n%s", n, r.stderr.text())
	}
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestVaultOutageKeepsChildThenRecovers(t *testing.T) {
	t.Parallel()
	v := startVaultConfig(t, t.TempDir())
	root := v.initRaft()
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	env, _ := watchEnv(t, v)
	env = append(env, "AION_VAULT_TOKEN="+root)
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))

	v.Stop()
	r.stderr.waitFor(t, "vault read failed; the child keeps running on the last good render", 10*time.Second)
	// Several intervals pass: the child is untouched.
	for range 3 {
		r.stderr.waitFor(t, "msg=polled", 15*time.Second)
	}
	if !alive(pid) || strings.Contains(r.stdout.text(), "sighup") || strings.Contains(r.stdout.text(), "term") {
		t.Fatalf("the child was disturbed during the outage:\n%s", r.stdout.text())
	}
	if n := strings.Count(r.stderr.text(), "vault read failed"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}

	v.start()
	v.unseal()
	r.stderr.waitFor(t, "vault read recovered", 30*time.Second)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-2", "host": "db1", "database": "app"})
	if l := r.stdout.waitFor(t, "sighup", 30*time.Second); pidOf(t, l) != pid || !strings.Contains(l, "pw-2") {
		t.Errorf("after recovery: %s", l)
	}
}

func TestChildExitCodePassesThrough(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	env, _ := watchEnv(t, v)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{[]string{"no-such-command-anywhere"}, 127},
	} {
		r := supervise(t, env, tc.args...)
		if got := r.wait(t); got != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, got, tc.code, r.stderr.text())
		}
	}
}

// A templates directory removed and put back changed (a deploy tool, a
// volume remounted) is watched again: the child keeps running while it is
// away, the template it comes back with reaches the child, and so do later
// edits. Its loss and its return are logged once each.
func TestTemplatesDirReplacedIsWatchedAgain(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	v.KVPut("secret", "aionos/dev/db-main", map[string]any{"username": "u", "password": "pw-1", "host": "db1", "database": "app"})
	env, _ := watchEnv(t, v, "AION_POLL_INTERVAL=1h")
	r := supervise(t, env, "node", childJS())
	pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
	dir := envValue(env, "AION_TEMPLATES_DIR")

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r.stderr.waitFor(t, "watched directory is gone", 10*time.Second)
	// Built aside and renamed into place.
	next := dir + ".new"
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(next, "creds.json.tmpl"), `{"password": {{ toJSON .db.password }}, "user": {{ toJSON .db.username }}}`)
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	r.stderr.waitFor(t, "watched directory is back", 10*time.Second)
	hup := r.stdout.waitFor(t, "sighup", 10*time.Second)
	if pidOf(t, hup) != pid || !strings.Contains(hup, `\"user\": \"u\"`) {
		t.Fatalf("after the directory's return: %s (child pid %d)", hup, pid)
	}

	write(t, filepath.Join(dir, "creds.json.tmpl"), `{"password": {{ toJSON .db.password }}}`)
	if hup := r.stdout.waitFor(t, "sighup n=2", 10*time.Second); strings.Contains(hup, `\"user\"`) {
		t.Errorf("an edit after the return was not rendered: %s", hup)
	}
	for _, line := range []string{"watched directory is gone", "watched directory is back"} {
		if n := strings.Count(r.stderr.text(), line); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", line, n, r.stderr.text())
		}
	}
	assertNoSecrets(t, r.stderr.text(), "pw-1")
}
