package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPerThreadSyscalls: aion-exec's signal catcher takes signal 33 from
// the Go runtime (docs/supervise.md), so nothing in the binary may use
// the runtime's per-thread system calls, which signal every thread with
// 33 and wait for each to answer: syscall.AllThreadsSyscall, and
// syscall.Setuid, Setgid, Setgroups and their kin, which use it without
// cgo. The linker keeps only what is called. (Not parallel: package
// main's other tests run a supervisor, the process's one waiter.)
func TestNoPerThreadSyscalls(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "aion-exec")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "AllThreadsSyscall") {
			t.Errorf("the binary links %s", strings.TrimSpace(line))
		}
	}
}
