package main

import (
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// ToolInfo describes one tool's binary.
type ToolInfo struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	Path            string `json:"path"`
	Bytes           int64  `json:"bytes"`
	Stripped        bool   `json:"stripped"`
	UnstrippedBytes int64  `json:"unstripped_bytes,omitempty"`
	Note            string `json:"note,omitempty"`
}

// LaunchResult is the launch measurement of one tool at one size.
type LaunchResult struct {
	Tool      string         `json:"tool"`
	N         int            `json:"secrets"`
	Runs      []LaunchRun    `json:"runs"`    // timed, audit device off
	Counted   []LaunchRun    `json:"counted"` // audit device on: requests and phases
	Stats     Stats          `json:"stats_ms"`
	StartReqs int            `json:"start_requests"` // median over runs
	ByPath    map[string]int `json:"start_by_path"`  // of the first run
	// Medians of the counted runs: their launch time and phases (see LaunchRun).
	CountedMs     float64 `json:"counted_ms"`
	BeforeVaultMs float64 `json:"before_vault_ms"`
	VaultMs       float64 `json:"vault_ms"`
	AfterVaultMs  float64 `json:"after_vault_ms"`
}

// ExitResult is child exit → wrapper exit of one tool at one size.
type ExitResult struct {
	Tool  string    `json:"tool"`
	N     int       `json:"secrets"`
	Runs  []float64 `json:"runs_ms"`
	Stats Stats     `json:"stats_ms"`
}

// SuperviseResult is the supervision measurement of one tool at one size.
type SuperviseResult struct {
	Tool string `json:"tool"`
	N    int    `json:"secrets"`
	Supervision
}

// Machine is where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	MemoryMiB int    `json:"memory_mib"`
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute figure when the run
	// began and ended: anything well above 0 means other work shared the
	// CPUs, and times are then upper bounds.
	LoadStart float64 `json:"load_1m_start"`
	LoadEnd   float64 `json:"load_1m_end"`
}

// Results is everything one run measured.
type Results struct {
	When        time.Time         `json:"when"`
	Machine     Machine           `json:"machine"`
	IntervalS   float64           `json:"poll_interval_s"`
	Sizes       []int             `json:"sizes"`
	Runs        int               `json:"runs"`
	AgentRuns   int               `json:"agent_runs"`
	Tools       []ToolInfo        `json:"tools"`
	Launch      []LaunchResult    `json:"launch"`
	Exit        []ExitResult      `json:"exit"`
	Supervise   []SuperviseResult `json:"supervise"`
	Propagation []Propagation     `json:"propagation"`
	Errors      []string          `json:"errors,omitempty"`
	SuperviseS  float64           `json:"supervise_s"` // every wrapper supervised this long, all at once
	SteadyS     float64           `json:"steady_s"`    // the last part of it that counts as steady state
	// DefaultPolicy: the tools' token had Vault's default policy (see tokenFor).
	DefaultPolicy bool `json:"default_policy"`
}

// toolInfos describes the binaries of the tools that have one.
func toolInfos(tools []tool, ctFull string) []ToolInfo {
	var out []ToolInfo
	for _, t := range tools {
		if t.Binary == "" {
			continue
		}
		info := ToolInfo{Name: t.Name, Path: t.Binary, Version: version(t), Stripped: true}
		if fi, err := os.Stat(t.Binary); err == nil {
			info.Bytes = fi.Size()
		}
		switch t.Name {
		case "aion-exec":
			info.Note = "CGO_ENABLED=0 -trimpath -ldflags \"-s -w\""
		case "vault-agent":
			info.Note = "the whole vault binary, -tags minimal, -ldflags \"-s -w\" (integration/build-vault.sh); the release build with every plugin is ~475 MB"
		case "consul-template":
			info.Note = "CGO_ENABLED=0 -trimpath -ldflags \"-s -w\"; the unstripped size is what go install builds"
			if fi, err := os.Stat(ctFull); err == nil {
				info.UnstrippedBytes = fi.Size()
			}
		}
		out = append(out, info)
	}
	return out
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// version asks the binary, bounded by a timeout.
func version(t tool) string {
	if t.Name == "consul-template" {
		return kit.Version(t.Binary, "-version")
	}
	return kit.Version(t.Binary, "version")
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: kit.Load1()}
	m.CPUModel = kit.CPUModel()
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var sb strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			sb.WriteByte(byte(c))
		}
		m.Kernel = sb.String()
	}
	m.MemoryMiB = kit.MemoryMiB()
	return m
}

// Stats summarises samples.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stats(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return Stats{N: len(s), Median: median(s), P90: s[(len(s)*9+9)/10-1], Min: s[0], Max: s[len(s)-1]}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func floats(xs []int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
