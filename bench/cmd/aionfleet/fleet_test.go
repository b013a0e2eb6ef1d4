package main

import (
	"strings"
	"testing"
	"time"
)

func TestCPUTicks(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (aion exec) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 8 0 123 0 0"
	got, err := cpuTicks([]byte(line))
	if err != nil || got != 22 {
		t.Fatalf("cpuTicks = %d, %v; want 22", got, err)
	}
	if _, err := cpuTicks([]byte("1 (x) S 1")); err == nil {
		t.Fatal("a short line must be an error")
	}
}

func TestParseEvents(t *testing.T) {
	es := parseEvents([]byte("start 10 1700000000000000000 25 00ff\nhup 10 1700000001000000000\nhup 10 17"))
	if len(es) != 3 || es[0].Kind != "start" || es[0].NVars != 25 || es[1].Kind != "hup" {
		t.Fatalf("parseEvents = %+v", es)
	}
	if childPID(es) != 10 {
		t.Fatalf("childPID = %d", childPID(es))
	}
	if n := count(es[:2], "hup", es[0].At); n != 1 {
		t.Fatalf("count = %d", n)
	}
}

func TestParseAudit(t *testing.T) {
	log := `{"auth":{"display_name":"token-fleet-0007"},"request":{"id":"a","operation":"read","path":"secret/data/fleet/s001"},"time":"2026-01-02T03:04:05.5Z","type":"request"}
{"auth":{"display_name":"token-fleet-0007"},"request":{"id":"a","operation":"read","path":"secret/data/fleet/s001"},"response":{},"time":"2026-01-02T03:04:05.6Z","type":"response"}
not json
`
	rs, err := parseAudit(strings.NewReader(log))
	if err != nil || len(rs) != 1 {
		t.Fatalf("parseAudit = %+v, %v", rs, err)
	}
	if rs[0].Who != "fleet-0007" || rs[0].Op != "read" || pathClass(rs[0].Path) != "secret/data/fleet/*" {
		t.Fatalf("entry = %+v", rs[0])
	}
	if d := rs[0].Answered.Sub(rs[0].At); d.Milliseconds() != 100 {
		t.Fatalf("answered after %s, want 100ms", d)
	}
}

func TestStats(t *testing.T) {
	s := stats([]float64{5, 1, 3, 2, 4})
	if s.N != 5 || s.Min != 1 || s.Median != 3 || s.Max != 5 || s.Mean != 3 {
		t.Fatalf("stats = %+v", s)
	}
	if q := quantile([]float64{0, 10}, 0.9); q != 9 {
		t.Fatalf("quantile = %v", q)
	}
	if (stats(nil) != Stats{}) {
		t.Fatal("stats(nil) not zero")
	}
}

func TestBusiestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var rs []auditRequest
	for _, ms := range []int{0, 100, 900, 1050, 1200, 1300, 2500} {
		rs = append(rs, auditRequest{At: t0.Add(time.Duration(ms) * time.Millisecond)})
	}
	// [900, 1900) holds 900, 1050, 1200, 1300.
	if got := busiestWindow(rs, t0, t0.Add(10*time.Second), time.Second); got != 4 {
		t.Fatalf("busiestWindow = %d, want 4", got)
	}
	if got := busiestWindow(rs, t0.Add(2*time.Second), t0.Add(10*time.Second), time.Second); got != 1 {
		t.Fatalf("busiestWindow from 2 s = %d, want 1", got)
	}
}
