package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aionos/aion-exec/bench/internal/golden"
)

// syntheticRun is a small fleet's audit log: four instances poll two
// secrets every 2 s, each at its own phase, root's requests among them; the
// fleet is silent while Vault is down and comes back in a burst.
func syntheticRun() (*fleet, []auditRequest) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 250e6, time.UTC)
	res := &Results{}
	res.Start.LaunchAt = t0
	res.Steady.From, res.Steady.To = t0.Add(10*time.Second), t0.Add(30*time.Second)
	res.Steady.WindowS = 20
	o := &res.Outage
	o.StopAt, o.DownAt, o.StartAt = t0.Add(40*time.Second), t0.Add(41*time.Second), t0.Add(50*time.Second)
	res.StopAt = t0.Add(80 * time.Second)
	var reqs []auditRequest
	add := func(at time.Duration, who, op, path string, took time.Duration) {
		r := auditRequest{At: t0.Add(at), Who: who, Path: path, Op: op}
		if took > 0 {
			r.Answered = r.At.Add(took)
		}
		reqs = append(reqs, r)
	}
	for i := 1; i <= 4; i++ {
		who := displayName(i)
		phase := time.Duration(i) * 370 * time.Millisecond
		add(phase, who, "read", "auth/token/lookup-self", 3*time.Millisecond)
		for at := phase; at < 80*time.Second; at += 2 * time.Second {
			if at >= 40*time.Second && at < 51*time.Second+phase/4 {
				continue // Vault is down, then each instance's backoff
			}
			for s := 1; s <= 2; s++ {
				add(at+time.Duration(s)*time.Millisecond, who, "read", fmt.Sprintf("secret/data/fleet/s%03d", s), time.Duration(i+s)*time.Millisecond)
			}
		}
	}
	add(20*time.Second, "root", "update", "secret/data/fleet/s001", time.Millisecond)
	add(52*time.Second, "fleet-0002", "read", "secret/data/fleet/s001", 0) // not answered
	return &fleet{n: 4, secrets: 2, interval: 2 * time.Second, res: res}, reqs
}

// TestAnalyzeAudit pins what analyzeAudit makes of a synthetic run:
// `go test -run AnalyzeAudit -update` writes the expectation again, from
// the code as it is.
func TestAnalyzeAudit(t *testing.T) {
	f, reqs := syntheticRun()
	f.analyzeAudit(reqs)
	got, err := json.MarshalIndent(struct {
		Steady Steady
		Outage Outage
		Series Series
		Errors []string
	}{f.res.Steady, f.res.Outage, f.res.Series, f.res.Errors}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Equal(t, got, "testdata/analyze.json")
}
