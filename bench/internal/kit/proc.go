package kit

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Event is one line that bench/cmd/benchchild wrote:
//
//	start PID UNIXNANO NVARS HASH
//	hup PID UNIXNANO
//	term PID UNIXNANO
type Event struct {
	Kind  string // start, hup, term
	PID   int
	At    time.Time // the child's own clock
	NVars int       // start: how many S###_F# variables it got
	Hash  string    // start: their FNV-64a
}

// ReadEvents reads an events file; a missing one has none yet.
func ReadEvents(path string) []Event {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return ParseEvents(b)
}

// ParseEvents parses events, skipping a line still being written.
func ParseEvents(b []byte) []Event {
	var out []Event
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, _ := strconv.Atoi(f[1])
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		e := Event{Kind: f[0], PID: pid, At: time.Unix(0, ns)}
		if e.Kind == "start" {
			if len(f) < 5 {
				continue
			}
			e.NVars, _ = strconv.Atoi(f[3])
			e.Hash = f[4]
		}
		out = append(out, e)
	}
	return out
}

// FreePort prints a free loopback port, for the scripts that start Vault.
func FreePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// CPUModel is /proc/cpuinfo's first model name.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ProcStatus reads the kB fields of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, ...) as KiB.
func ProcStatus(pid int) (map[string]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if v = strings.TrimSpace(v); ok && strings.HasSuffix(v, " kB") {
			out[k], _ = strconv.Atoi(strings.TrimSuffix(v, " kB"))
		}
	}
	return out, nil
}
