//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is one finished aion-exec run.
type result struct {
	Code           int
	Stdout, Stderr string
}

// aion runs the aion-exec binary to completion with env (and nothing of
// ours: tests must not lean on the developer's VAULT_* variables).
func aion(t testing.TB, env []string, args ...string) result {
	t.Helper()
	return aionIn(t, "", env, args...)
}

// aionIn is aion with the binary's working directory set to dir: dev
// bootstrap writes .vault/ and .env.vault.dev into the current directory.
func aionIn(t testing.TB, dir string, env []string, args ...string) result {
	t.Helper()
	return runIn(t, dir, append(baseEnv(), env...), aionBin, args...)
}

// runIn runs a program to completion in dir with exactly env.
func runIn(t testing.TB, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return result{code, so.String(), se.String()}
}

// repoRoot is the checkout this file lives in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// unsealRoot reads the root token from dev bootstrap's unseal file in dir.
func unsealRoot(t testing.TB, dir string) string {
	t.Helper()
	var u struct {
		RootToken string `json:"root_token"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".vault", "dev-unseal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &u); err != nil || u.RootToken == "" {
		t.Fatalf("unseal file: %v", err)
	}
	return u.RootToken
}

// baseEnv is a minimal environment for children: PATH and HOME only.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AION_LOG_LEVEL=debug"}
}

// lineReader hands out the lines a process writes, for waiting on them
// with a deadline instead of sleeping.
type lineReader struct {
	lines chan string
	mu    sync.Mutex
	all   []string
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lr.mu.Lock()
			lr.all = append(lr.all, sc.Text())
			lr.mu.Unlock()
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// waitFor returns the first line (from now on) that has substr.
func (lr *lineReader) waitFor(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				t.Fatalf("stream ended while waiting for %q; got:\n%s", substr, lr.text())
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; got:\n%s", substr, timeout, lr.text())
		}
	}
}

// next returns the next line, whatever it says.
func (lr *lineReader) next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-lr.lines:
		if !ok {
			t.Fatalf("stream ended; got:\n%s", lr.text())
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no line within %s; got:\n%s", timeout, lr.text())
		return ""
	}
}

func (lr *lineReader) text() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return strings.Join(lr.all, "\n")
}

// eventually polls cond (a server's observable state) until it returns nil
// or timeout passes.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}
