package kit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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

// FreePort is a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PrintFreePort prints a free loopback port, for the scripts that start
// Vault.
func PrintFreePort() error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	fmt.Println(port)
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

// IsExe reports whether pid runs bin (its argv[0]), so that a recycled
// PID is never killed.
func IsExe(pid int, bin string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return argv0 == bin
}

// Proc is a process under measurement: started in a process group of its
// own, so that a cleanup can kill whatever it left behind, and waited for
// by a goroutine of its own.
type Proc struct {
	Cmd    *exec.Cmd
	T0     time.Time     // just before the fork
	ExitAt time.Time     // when Wait returned; read after Done is closed
	Err    error         // what Wait returned; read after Done is closed
	Done   chan struct{} // closed once the process has been waited for
}

// NewProc prepares cmd; Start starts it.
func NewProc(cmd *exec.Cmd) *Proc {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return &Proc{Cmd: cmd, Done: make(chan struct{})}
}

// Start starts the process with its output to out, which the caller may
// close once Start returns.
func (p *Proc) Start(out *os.File) error {
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.T0 = time.Now()
	if err := p.Cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.Err = p.Cmd.Wait()
		p.ExitAt = time.Now()
		close(p.Done)
	}()
	return nil
}

// Exited reports whether the process has ended and been waited for.
func (p *Proc) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// Tail is the last n bytes of the file at path, trimmed, for error
// messages and reports.
func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
