package kit

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Load1 is /proc/loadavg's 1-minute figure, -1 when it cannot be read.
func Load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

// Kernel is the running kernel's release, "" when it cannot be read.
func Kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// MemoryMiB is the machine's RAM, 0 when it cannot be read.
func MemoryMiB() int {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int(si.Totalram * uint64(si.Unit) >> 20)
}

// Version is the first line that bin prints for arg (version, -version),
// bounded by a timeout; "unknown" when it fails.
func Version(bin, arg string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, arg).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
