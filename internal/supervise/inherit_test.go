package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func init() { helpers["sigexec"] = helperSigexec }

// helperSigexec starts HELPER_EXEC with the signals HELPER_BLOCK names
// blocked and those HELPER_IGNORE names ignored, as a parent would, and
// HELPER_ARGS (split at spaces) as its arguments; with HELPER_NEXT, as
// that helper.
func helperSigexec() {
	runtime.LockOSThread()
	for _, name := range strings.Fields(os.Getenv("HELPER_IGNORE")) {
		if err := setIgnored(unix.SignalNum(name)); err != nil {
			panic(err)
		}
	}
	var set unix.Sigset_t
	for _, name := range strings.Fields(os.Getenv("HELPER_BLOCK")) {
		set.Val[0] |= sigbits(unix.SignalNum(name))
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil); err != nil {
		panic(err)
	}
	exe := os.Getenv("HELPER_EXEC")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, v := range []string{"HELPER_EXEC=", "HELPER_BLOCK=", "HELPER_IGNORE=", "HELPER_ARGS=", "HELPER_NEXT=", helperVar + "="} {
			if strings.HasPrefix(kv, v) {
				return true
			}
		}
		return false
	})
	if next := os.Getenv("HELPER_NEXT"); next != "" {
		env = append(env, helperVar+"="+next)
	}
	panic(syscall.Exec(exe, append([]string{exe}, strings.Fields(os.Getenv("HELPER_ARGS"))...), env))
}

var (
	aionOnce sync.Once
	aionPath string
	aionErr  error
)

// aionBinary builds testdata/aion with the entry that records the signal
// state at start. go build runs under a Supervisor: an os/exec wait would
// race the reapers of parallel tests.
func aionBinary(t *testing.T) string {
	t.Helper()
	aionOnce.Do(func() {
		dir := publicSelf(t) // a directory that outlives the test
		aionPath = filepath.Join(filepath.Dir(dir), "aion")
		// From this file's directory, so that a test binary run from
		// anywhere (as PID 1 by test.sh) finds the sources.
		_, file, _, _ := runtime.Caller(0)
		s := New(Options{
			Args: []string{"go", "-C", filepath.Dir(file), "build", "-ldflags=-E=" + EntrySymbol, "-o", aionPath, "./testdata/aion"},
			Env:  append(os.Environ(), "CGO_ENABLED=0"),
		})
		if code, err := s.Run(context.Background()); code != 0 || err != nil {
			aionErr = fmt.Errorf("go build ./testdata/aion = %d, %v", code, err)
		}
	})
	if aionErr != nil {
		t.Fatal(aionErr)
	}
	return aionPath
}

// sigState runs `cat /proc/self/status` under a supervisor started with
// the signals block names blocked and ignore names ignored, and returns
// cat's SigBlk and SigIgn. The supervisor is exe with args, and kv.
func sigState(t *testing.T, block, ignore, exe, args string, kv ...string) (blk, ign uint64) {
	t.Helper()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("sigexec", append([]string{
		"HELPER_EXEC=" + exe, "HELPER_BLOCK=" + block, "HELPER_IGNORE=" + ignore,
		"HELPER_ARGS=" + args, "PATH=" + os.Getenv("PATH")}, kv...)...)}, true)
	r, err := p.wait()
	must(t, err)
	lines, err := p.rest()
	must(t, err)
	if r.code != 0 {
		t.Fatalf("supervisor = %d, %v; output:\n%s", r.code, r.err, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":\t")
		n, _ := strconv.ParseUint(v, 16, 64)
		switch k {
		case "SigBlk":
			blk = n
		case "SigIgn":
			ign = n
		}
	}
	return blk, ign
}

func names(bits uint64) string {
	var s []string
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if hasSig(bits, sig) {
			s = append(s, signame(sig))
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// TestInheritsSignalState: the child starts with the mask and the ignored
// signals aion-exec was started with, as under tini, even those the Go
// runtime takes over before any Go code runs; and with none of either
// when aion-exec had none.
func TestInheritsSignalState(t *testing.T) {
	t.Parallel()
	aion := aionBinary(t)
	for _, tt := range []struct{ block, ignore string }{
		{"SIGILL SIGTERM", "SIGINT SIGSEGV"},
		{"SIGUSR1 SIGHUP SIGQUIT", "SIGPIPE SIGXFSZ SIGQUIT SIGTSTP"},
		{"", ""},
	} {
		blk, ign := sigState(t, tt.block, tt.ignore, aion, "cat /proc/self/status")
		var wantBlk, wantIgn uint64
		for _, n := range strings.Fields(tt.block) {
			wantBlk |= sigbits(unix.SignalNum(n))
		}
		for _, n := range strings.Fields(tt.ignore) {
			wantIgn |= sigbits(unix.SignalNum(n))
		}
		if blk != wantBlk || ign != wantIgn {
			t.Errorf("started with %q blocked and %q ignored: child has %s blocked and %s ignored; want %s and %s",
				tt.block, tt.ignore, names(blk), names(ign), names(wantBlk), names(wantIgn))
		}
	}
}

// TestSignalStateWithoutEntry: linked without EntrySymbol (as this test
// binary is), aion-exec passes on what the runtime leaves: the blockable
// part of the mask, and SIGINT (or SIGHUP) ignored.
func TestSignalStateWithoutEntry(t *testing.T) {
	t.Parallel()
	if startRecorded {
		t.Fatal("this test binary was linked with EntrySymbol; TestInheritsSignalState covers it")
	}
	helperUsed.Store("supervisor", true)
	blk, ign := sigState(t, "SIGUSR1 SIGTERM", "SIGINT SIGSEGV", self(), "",
		"HELPER_NEXT=supervisor", "HELPER_SUPERVISE_CMD=cat /proc/self/status")
	if want := sigbits(syscall.SIGUSR1); blk != want {
		t.Errorf("child has %s blocked, want %s", names(blk), names(want))
	}
	if want := sigbits(syscall.SIGINT); ign != want {
		t.Errorf("child has %s ignored, want %s", names(ign), names(want))
	}
}

// TestShimExecError: through the shim, a failed exec still gives the
// shell's status.
func TestShimExecError(t *testing.T) {
	t.Parallel()
	aion := aionBinary(t)
	dir := t.TempDir()
	badInterp := filepath.Join(dir, "bad-interp")
	must(t, os.WriteFile(badInterp, []byte("#!/nonexistent/interpreter\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	must(t, os.WriteFile(plain, nil, 0o644))
	for path, want := range map[string]int{badInterp: 127, plain: 126, "/bin/true": 0} {
		p := start(t, Options{Args: []string{self()}, Env: helperEnv("sigexec",
			"HELPER_EXEC="+aion, "HELPER_IGNORE=SIGSEGV", "HELPER_ARGS="+path)}, true)
		if r, err := p.wait(); err != nil || r.code != want {
			t.Errorf("%s through the shim = %d, %v (%v); want %d", path, r.code, r.err, err, want)
		}
	}
}
