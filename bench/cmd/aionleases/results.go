package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// Machine is where the run ran.
type Machine struct {
	CPUs      int     `json:"nproc"`
	GoVersion string  `json:"go_version"`
	Kernel    string  `json:"kernel"`
	LoadStart float64 `json:"load1_start"`
	LoadEnd   float64 `json:"load1_end"`
	LoadAfter float64 `json:"load1_after_stop"`
}

// Settings are the run's parameters.
type Settings struct {
	Scale          float64           `json:"scale"`
	EffectiveScale float64           `json:"effective_scale"`
	Days           float64           `json:"simulated_days"`
	TTL            string            `json:"role_default_ttl"`
	MaxTTL         string            `json:"role_max_ttl"`
	SimHour        string            `json:"simulated_hour"`
	SimDay         string            `json:"simulated_day"`
	RunSeconds     float64           `json:"run_seconds"`
	TokenTTL       string            `json:"token_ttl"`
	Versions       map[string]string `json:"versions"`
	WatchPolls     int               `json:"lease_lookup_polls"`
	Started        time.Time         `json:"started"`
}

// Result is leases.json.
type Result struct {
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Tools    []ToolResult `json:"tools"`
	// AionModel is what docs/leases.md's rules give at the run's TTLs,
	// AionModel1h at a real 1 h / 24 h; DocsPrediction is the page's
	// "about 39 requests a day".
	AionModel      Model `json:"aion_exec_rules_model"`
	AionModel1h    Model `json:"aion_exec_rules_model_1h"`
	DocsPrediction int   `json:"docs_leases_md_prediction_per_day"`
}

// ToolResult is one tool's numbers.
type ToolResult struct {
	Name    string `json:"name"`
	Display string `json:"token_display_name"`
	// Run counts the requests from the tool's start to the end of the
	// measured run; PerHour and PerDay divide them by the simulated hours
	// and days it lasted; Day1 counts the first simulated day alone (start
	// included, as docs/leases.md's worked timeline does); Exit counts
	// what the tool sent while it stopped.
	Run          Counts         `json:"run"`
	PerHour      Rates          `json:"per_simulated_hour"`
	PerDay       Rates          `json:"per_simulated_day"`
	Day1         Counts         `json:"first_simulated_day"`
	Exit         Counts         `json:"at_exit"`
	Paths        map[string]int `json:"paths"`
	Errors       int            `json:"error_responses"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	Hourly       []Counts       `json:"per_simulated_hour_series"`
	Credentials  []*Credential  `json:"credentials"`
	Rotations    []Rotation     `json:"rotations"`
	Holds        []Hold         `json:"child_holds"`
	// ChildStarts counts the child's starts; Restarts is that less one;
	// Hups counts SIGHUPs the child got.
	ChildStarts int `json:"child_starts"`
	Restarts    int `json:"child_restarts"`
	Hups        int `json:"child_hups"`
	// ExpiredHeld: some child ran on a user after that user's lease had
	// ended (or on a credential no read of the tool explains).
	ExpiredHeld bool `json:"child_held_expired_credential"`
	// MinHoldLead is the smallest margin, over every closed hold, between
	// the child getting the next user and the previous user's lease end;
	// MinRotationLead the same for the tool's reads of a new user.
	MinHoldLead     *time.Duration `json:"min_hold_lead_ns,omitempty"`
	MinRotationLead *time.Duration `json:"min_rotation_lead_ns,omitempty"`
	Exited          string         `json:"exited_early,omitempty"`
	// Cycle is the first user's whole life (read to the next read).
	Cycle *Cycle `json:"first_cycle,omitempty"`
}

func writeResults(dir string, r Result) error {
	if err := kit.WriteJSON(filepath.Join(dir, "leases.json"), r); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "leases.md"), []byte(markdown(r)), 0o644)
}

// write writes leases.json and leases.md into -out.
func (l *leaseRun) write(res Result) error {
	out := l.c.out
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeResults(out, res); err != nil {
		return err
	}
	l.logf("wrote %s and %s", filepath.Join(out, "leases.json"), filepath.Join(out, "leases.md"))
	for _, t := range res.Tools {
		l.logf("%-16s day 1: %d requests (%d creds, %d renew, %d token, %d other); %d child starts; expired held: %t",
			t.Name, t.Day1.Total, t.Day1.Creds, t.Day1.Renew, t.Day1.Token, t.Day1.Other, t.ChildStarts, t.ExpiredHeld)
	}
	return nil
}
