package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// displayName is instance i's token display name.
func displayName(i int) string { return fmt.Sprintf("fleet-%04d", i) }

// instance is one aion-exec with its benchchild.
type instance struct {
	*kit.Proc
	id     int
	name   string
	events string
	log    string
}

// writeTemplates writes the one env template every instance shares: every
// field of every secret, as aionbench's aion-exec does.
func writeTemplates(dir string, secrets int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "fleet.env.tmpl"), []byte(kit.EnvTemplate(secrets)), 0o600)
}

// prepare builds instance i's command; it does not start it.
func (f *fleet) prepare(i int, token string) (*instance, error) {
	dir := filepath.Join(f.work, "inst", fmt.Sprintf("%04d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	events := filepath.Join(dir, "events")
	env := append(kit.ToolEnv(dir, events),
		"AION_VAULT_ADDR="+f.vault.api.Addr,
		"AION_VAULT_TOKEN="+token,
		"AION_TEMPLATES_DIR="+f.templates,
		"AION_RENDER_DIR="+filepath.Join(dir, "render"),
		"AION_POLL_INTERVAL="+f.interval.String(),
		"AION_LOG_LEVEL=info",
		"AION_STARTUP_TIMEOUT="+f.startupTimeout.String(),
	)
	cmd := exec.Command(f.aion, "--", f.child)
	cmd.Env, cmd.Dir = append(env, kit.SecretVars("fleet", f.secrets)...), dir
	return &instance{Proc: kit.NewProc(cmd), id: i, name: displayName(i), events: events, log: filepath.Join(dir, "aion-exec.log")}, nil
}

// start forks the instance and returns at once.
func (in *instance) start() error {
	lf, err := os.Create(in.log)
	if err != nil {
		return err
	}
	defer lf.Close()
	return in.Start(lf)
}

// event is one line that an instance's child wrote.
type event = kit.Event

func readEvents(path string) []event { return kit.ReadEvents(path) }

func parseEvents(b []byte) []event { return kit.ParseEvents(b) }

// allEvents reads every instance's events, concurrently (hundreds of small
// files).
func (f *fleet) allEvents() [][]event {
	out := make([][]event, len(f.insts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for k, in := range f.insts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[k] = readEvents(in.events)
		})
	}
	wg.Wait()
	return out
}

func count(es []event, kind string, after time.Time) int {
	n := 0
	for _, e := range es {
		if e.Kind == kind && !e.At.Before(after) {
			n++
		}
	}
	return n
}

// procStat is what /proc says of one process.
type procStat struct {
	RSSKiB, HWMKiB, AnonKiB int
	CPUTicks                int64 // utime+stime
}

// readProc reads VmRSS and VmHWM from /proc/PID/status and utime+stime
// from /proc/PID/stat.
func readProc(pid int) (procStat, error) {
	var p procStat
	kb, err := kit.ProcStatus(pid)
	if err != nil {
		return p, err
	}
	p.RSSKiB, p.HWMKiB, p.AnonKiB = kb["VmRSS"], kb["VmHWM"], kb["RssAnon"]
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	p.CPUTicks, err = cpuTicks(st)
	return p, err
}

// cpuTicks is utime+stime (fields 14 and 15) of a /proc/PID/stat line; the
// command name, in parentheses, may hold spaces.
func cpuTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat line")
	}
	fs := strings.Fields(string(stat[i+1:]))
	// fs[0] is field 3 (state): utime is field 14, stime 15.
	if len(fs) < 13 {
		return 0, fmt.Errorf("short stat line")
	}
	u, err1 := strconv.ParseInt(fs[11], 10, 64)
	s, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad stat times")
	}
	return u + s, nil
}

// pssKiB is the proportional set size of pid (/proc/PID/smaps_rollup):
// pages shared by many processes, such as the text of one binary run 500
// times, count once in the sum over all of them, unlike VmRSS.
func pssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// childPID is the PID of the instance's child (its start line), or 0.
func childPID(es []event) int {
	for _, e := range es {
		if e.Kind == "start" {
			return e.PID
		}
	}
	return 0
}
