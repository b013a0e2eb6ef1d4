//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dbAnswer is what the example service's /db answers.
type dbAnswer struct {
	PID      int    `json:"pid"`
	Reloads  int    `json:"reloads"`
	Database string `json:"database"`
	User     string `json:"user"`
	Port     int    `json:"port"`
	Error    string `json:"error"`
}

func getDB(url string) (dbAnswer, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return dbAnswer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a dbAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if resp.StatusCode != 200 {
		return a, fmt.Errorf("status %d: %s", resp.StatusCode, a.Error)
	}
	return a, nil
}

// TestEndToEndRotationAndMove is the platform's story with real processes:
// a Raft Vault set up by `dev bootstrap`, two PostgreSQL clusters, and the
// example Node service (pg) wrapped by aion-exec. A password rotation
// reaches the service as one SIGHUP without a failed request; a move to
// another cluster restarts it once.
func TestEndToEndRotationAndMove(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	v := startVaultConfig(t, t.TempDir())
	if r := aionIn(t, work, bootstrapEnv(v), "dev", "bootstrap"); r.Code != 0 {
		t.Fatalf("dev bootstrap: exit %d\n%s", r.Code, r.Stderr)
	}
	rootToken := unsealRoot(t, work)
	root := v.Client(rootToken)
	kv := root.KVv2("secret")
	seeded, err := kv.Get(t.Context(), "aionos/dev/db-main")
	if err != nil {
		t.Fatal(err)
	}
	password := seeded.Data["password"].(string)

	a, b2 := startPostgres(t), startPostgres(t)
	for _, p := range []*Postgres{a, b2} {
		p.psql("create role aionos login password " + sqlString(password))
		p.psql("create database aionos owner aionos")
	}
	if _, err := kv.Patch(t.Context(), "aionos/dev/db-main", map[string]any{"port": a.Port}); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	env := envList(sourceEnvFile(t, filepath.Join(work, ".env.vault.dev")))
	env = append(env,
		"AION_TEMPLATES_DIR="+filepath.Join(repoRoot(), "examples", "node-service", "templates"),
		"AION_RENDER_DIR="+filepath.Join(work, "render"),
		"AION_POLL_INTERVAL=300ms",
		fmt.Sprintf("PORT=%d", port),
	)
	r := supervise(t, env, "node", filepath.Join(repoRoot(), "examples", "node-service", "server.js"))
	ready := r.stdout.waitFor(t, "ready", 30*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/db", port)
	first, err := getDB(url)
	if err != nil || first.Port != a.Port || first.User != "aionos" {
		t.Fatalf("first answer %+v, %v (%s)", first, err, ready)
	}

	// Requests in a loop while the password rotates.
	var (
		mu       sync.Mutex
		failures []string
		answers  []dbAnswer
	)
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ans, err := getDB(url)
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				answers = append(answers, ans)
			}
			mu.Unlock()
		}
	}()

	const rotated = "rotated-Pässword with 'quotes' & spaces"
	a.psql("alter role aionos password " + sqlString(rotated))
	if _, err := kv.Patch(t.Context(), "aionos/dev/db-main", map[string]any{"password": rotated}); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitFor(t, "reloaded 1", 15*time.Second)
	// Keep the loop going past the reload until the new pool has answered.
	eventually(t, "answers from the reloaded pool", 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ans := range answers {
			if ans.Reloads == 1 {
				n++
			}
		}
		if n < 20 {
			return fmt.Errorf("%d answers after the reload", n)
		}
		return nil
	})
	close(stop)
	<-loopDone
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %s", len(failures), len(failures)+len(answers), failures[0])
	}
	for _, ans := range answers {
		if ans.PID != first.PID {
			t.Fatalf("the service restarted on a password rotation: pid %d then %d", first.PID, ans.PID)
		}
	}
	// Old connections may linger; cut them all: new ones need the new password.
	a.psql("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'aionos'")
	eventually(t, "a fresh connection with the rotated password", 10*time.Second, func() error {
		_, err := getDB(url)
		return err
	})

	// Move to the second cluster: a host field change, one restart.
	b2.psql("alter role aionos password " + sqlString(rotated))
	if _, err := kv.Patch(t.Context(), "aionos/dev/db-main", map[string]any{"port": b2.Port}); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitFor(t, "stopping on SIGTERM", 15*time.Second)
	moved := r.stdout.waitFor(t, "ready", 30*time.Second)
	if !strings.Contains(moved, fmt.Sprintf(":%d/aionos", b2.Port)) {
		t.Fatalf("restarted service: %s", moved)
	}
	var after dbAnswer
	eventually(t, "an answer from the second cluster", 15*time.Second, func() error {
		after, err = getDB(url)
		return err
	})
	if after.Port != b2.Port || after.PID == first.PID {
		t.Errorf("after the move: %+v (first pid %d)", after, first.PID)
	}
	r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	r.stderr.waitFor(t, "msg=polled", 5*time.Second)
	if n := strings.Count(r.stdout.text(), "ready pid="); n != 2 {
		t.Errorf("%d service starts, want 2 (one restart)", n)
	}
	assertNoSecrets(t, r.stderr.text(), password, rotated, rootToken)
}
