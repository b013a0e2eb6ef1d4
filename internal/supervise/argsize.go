package supervise

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// CheckArgSize reports, before any fork, what execve would refuse with
// E2BIG ("argument list too long") for args and env: one error line that
// names every variable at fault and its size, and what to do instead. Its
// status is sysexits.DataErr. args[0] stands for the program's path.
//
// The limits are Linux's (fs/exec.c, since 4.13): one string, NAME=value
// or an argument, holds at most MAX_ARG_STRLEN (32 pages) with its NUL; all
// strings with their NULs, the path, and a pointer for each argument and
// variable together hold at most a quarter of the stack limit
// (RLIMIT_STACK), but never more than 6 MiB (3/4 of _STK_LIM) nor less
// than ARG_MAX (128 KiB). A #! script's interpreter adds its own path and
// arguments to that, which this check cannot know.
func CheckArgSize(args, env []string) error {
	path := ""
	if len(args) > 0 {
		path = args[0]
	}
	return checkArgSize(path, args, env)
}

func checkArgSize(path string, args, env []string) error {
	maxStr := 32 * os.Getpagesize()
	var long []string // NAME (N bytes)
	for _, kv := range env {
		if len(kv)+1 > maxStr {
			long = append(long, sizeOf(kv))
		}
	}
	for i, a := range args {
		if len(a)+1 > maxStr {
			long = append(long, fmt.Sprintf("argument %d (%d bytes)", i, len(a)))
		}
	}
	if len(long) > 0 {
		return sysexits.Wrap(sysexits.DataErr, fmt.Errorf("environment too large to exec: %s over the kernel's limit of %d bytes for one variable (NAME=value) or argument; %s",
			strings.Join(long, ", "), maxStr-1, advice(len(long))))
	}
	total := len(path) + 1 + 8*(max(len(args), 1)+len(env))
	for _, s := range slices.Concat(args, env) {
		total += len(s) + 1
	}
	if limit := argLimit(); total > limit {
		return sysexits.Wrap(sysexits.DataErr, fmt.Errorf("environment too large to exec: %d bytes of arguments and variables, over the kernel's limit of %d (a quarter of the stack limit, between 128 KiB and 6 MiB); the largest: %s; %s",
			total, limit, strings.Join(largest(env, 3), ", "), advice(2)))
	}
	return nil
}

func advice(n int) string {
	if n == 1 {
		return "render it into a file with a *.tmpl template instead"
	}
	return "render them into files with *.tmpl templates instead"
}

// sizeOf names kv's variable, never its value.
func sizeOf(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return fmt.Sprintf("%s (%d bytes)", name, len(kv))
}

func largest(env []string, n int) []string {
	env = slices.SortedFunc(slices.Values(env), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var out []string
	for _, kv := range env[:min(n, len(env))] {
		out = append(out, sizeOf(kv))
	}
	return out
}

// argLimit is bprm_stack_limits: a quarter of the stack limit, at most
// 3/4 of _STK_LIM (8 MiB), at least ARG_MAX.
func argLimit() int {
	stack := uint64(8 << 20)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err == nil {
		stack = rl.Cur // RLIM_INFINITY is the largest uint64
	}
	return int(max(min(6<<20, stack/4), 128<<10))
}
