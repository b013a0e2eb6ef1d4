package supervise

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

func TestCheckArgSize(t *testing.T) {
	t.Parallel()
	maxStr := 32 * os.Getpagesize()
	big := func(name string, n int) string { return name + "=" + strings.Repeat("x", n-len(name)-1) }
	tests := []struct {
		name string
		args []string
		env  []string
		want []string // substrings of the error; nil for none
	}{
		{"small", []string{"/bin/true"}, []string{"A=1"}, nil},
		{"one at the limit", []string{"/bin/true"}, []string{big("A", maxStr-1)}, nil},
		{"one over", []string{"/bin/true"}, []string{"A=1", big("PGPASSWORD", maxStr)},
			[]string{"PGPASSWORD (131072 bytes)", "limit of 131071", "render it into a file with a *.tmpl template instead"}},
		{"two over", []string{"/bin/true"}, []string{big("X", 200_000), big("Y", maxStr+5)},
			[]string{"X (200000 bytes), Y (131077 bytes)", "render them into files"}},
		{"argument over", []string{"/bin/echo", "a", strings.Repeat("y", maxStr)}, nil,
			[]string{"argument 2 (131072 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckArgSize(tt.args, tt.env)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("err = nil, want one with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to hold %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "xxxxxx") || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %.200q, holds a value or more than one line", err)
			}
			if sysexits.Code(err) != sysexits.DataErr {
				t.Errorf("code = %d, want %d", sysexits.Code(err), sysexits.DataErr)
			}
		})
	}
}

// TestArgLimitIsTheKernels: just under the total the kernel computes, exec
// works; just over it, CheckArgSize and the kernel both refuse.
func TestArgLimitIsTheKernels(t *testing.T) {
	t.Parallel()
	var rl unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_STACK, &rl))
	limit := argLimit()
	path := self()
	args := []string{path}
	fill := func(total int) []string {
		// Variables of 100000 bytes and a last one to make up total.
		env := helperEnv("exit", "HELPER_CODE=0")
		used := len(path) + 1 + len(path) + 1
		for _, kv := range env {
			used += len(kv) + 1
		}
		for {
			n := min(100_000, total-used-8*(len(env)+2)-1)
			if n < 10 {
				break
			}
			kv := "F" + strings.Repeat("f", n-1)
			env = append(env, kv)
			used += len(kv) + 1
		}
		return env
	}
	under, over := fill(limit), fill(limit+64)
	if err := checkArgSize(path, args, under); err != nil {
		t.Fatalf("at the limit (stack rlimit %d): %v", rl.Cur, err)
	}
	if err := checkArgSize(path, args, over); err == nil {
		t.Fatal("over the limit: err = nil")
	}
	// The kernel agrees with both. ForkExec reaps a child whose exec
	// failed itself; should a reaper of a parallel test take it first,
	// the error is still E2BIG.
	if _, err := syscall.ForkExec(path, args, &syscall.ProcAttr{Env: over}); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("exec over the limit: err = %v, want E2BIG", err)
	}
	p := start(t, Options{Args: args, Env: under}, true)
	if r, err := p.wait(); err != nil || r.code != 0 {
		t.Errorf("exec at the limit = %d, %v (%v); want 0", r.code, r.err, err)
	}
}

// TestOversizedEnvRefused: Run refuses before it forks.
func TestOversizedEnvRefused(t *testing.T) {
	t.Parallel()
	huge := "HUGE=" + strings.Repeat("s", 200_000)
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("exit", huge)}, true)
	r, err := p.wait()
	must(t, err)
	if r.code != sysexits.DataErr || r.err == nil || !strings.Contains(r.err.Error(), "HUGE (200005 bytes)") {
		t.Errorf("run = %d, %v; want 65 and an error naming HUGE", r.code, r.err)
	}
	if len(p.pids) > 0 {
		t.Errorf("a child was started: %d", <-p.pids)
	}
}
