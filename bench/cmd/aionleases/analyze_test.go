package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// line is one audit log entry as Vault's file device writes it (log_raw).
func line(t *testing.T, typ string, at time.Duration, who, op, path string, reqData, respData map[string]any, lease, errMsg string) string {
	t.Helper()
	e := map[string]any{
		"time": t0.Add(at).Format(time.RFC3339Nano), "type": typ,
		"auth":    map[string]any{"display_name": "token-" + who},
		"request": map[string]any{"path": path, "operation": op, "data": reqData},
	}
	if typ == "response" {
		resp := map[string]any{"data": respData}
		if lease != "" {
			resp["secret"] = map[string]any{"lease_id": lease}
		}
		e["response"] = resp
	}
	if errMsg != "" {
		e["error"] = errMsg
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// read and renew are a request and its response, 5 ms apart.
func read(t *testing.T, at time.Duration, who, user, pass, lease string) []string {
	return []string{
		line(t, "request", at, who, "read", "database/creds/app", nil, nil, "", ""),
		line(t, "response", at+5*time.Millisecond, who, "read", "database/creds/app", nil,
			map[string]any{"username": user, "password": pass}, lease, ""),
	}
}

func renew(t *testing.T, at time.Duration, who, lease string) []string {
	d := map[string]any{"lease_id": lease, "increment": 15}
	return []string{
		line(t, "request", at, who, "update", "sys/leases/renew", d, nil, "", ""),
		line(t, "response", at+5*time.Millisecond, who, "update", "sys/leases/renew", d, nil, lease, ""),
	}
}

func parse(t *testing.T, lines ...[]string) []auditEntry {
	t.Helper()
	var all []string
	for _, l := range lines {
		all = append(all, l...)
	}
	all = append(all, `{"type":"something else"}`, `not json`)
	es, err := parseAudit(strings.NewReader(strings.Join(all, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestClassify(t *testing.T) {
	for path, want := range map[string]string{
		"database/creds/app":                        ClassCreds,
		"sys/leases/renew":                          ClassRenew,
		"sys/leases/renew/database/creds/app/abc":   ClassRenew,
		"sys/renew/database/creds/app/abc":          ClassRenew,
		"auth/token/lookup-self":                    ClassToken,
		"auth/token/renew-self":                     ClassToken,
		"sys/leases/revoke":                         ClassOther,
		"sys/internal/ui/mounts/database/creds/app": ClassOther,
		"database/creds/other":                      ClassOther,
	} {
		if got := classify(path, "database/creds/app"); got != want {
			t.Errorf("classify(%s) = %s, want %s", path, got, want)
		}
	}
}

const (
	ttl    = 15 * time.Second
	maxTTL = 360 * time.Second
)

func TestCountWindowsAndOwners(t *testing.T) {
	es := parse(t,
		read(t, 0, "lease-aion-exec", "u1", "p1", "database/creds/app/L1"),
		read(t, time.Second, "lease-vault-agent", "u9", "p9", "database/creds/app/L9"),
		renew(t, 10*time.Second, "lease-aion-exec", "database/creds/app/L1"),
		[]string{line(t, "request", 11*time.Second, "lease-aion-exec", "read", "auth/token/lookup-self", nil, nil, "", "")},
		[]string{line(t, "request", 12*time.Second, "root", "read", "database/creds/app", nil, nil, "", "")},
		[]string{line(t, "request", 20*time.Second, "lease-aion-exec", "update", "sys/leases/revoke", nil, nil, "", "")},
	)
	c, paths := count(es, "lease-aion-exec", "database/creds/app", t0, t0.Add(20*time.Second))
	if want := (Counts{Creds: 1, Renew: 1, Token: 1, Total: 3}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if paths["update sys/leases/renew"] != 1 || paths["read database/creds/app"] != 1 {
		t.Errorf("paths %v", paths)
	}
	exit, _ := count(es, "lease-aion-exec", "database/creds/app", t0.Add(20*time.Second), t0.Add(time.Hour))
	if exit != (Counts{Other: 1, Total: 1}) {
		t.Errorf("exit counts %+v", exit)
	}
	h := hourly(es, "lease-aion-exec", "database/creds/app", t0, t0.Add(20*time.Second), ttl)
	if len(h) != 2 || h[0].Total != 3 || h[1].Total != 0 {
		t.Errorf("hourly %+v", h)
	}
	if r := c.per(0.5); r.Total != 6 || r.Renew != 2 {
		t.Errorf("per half a unit: %+v", r)
	}
}

func TestErrorsAreCounted(t *testing.T) {
	es := parse(t, []string{line(t, "response", time.Second, "lease-consul-template", "update", "sys/leases/renew/database/creds/app/X",
		nil, nil, "", "permission denied")})
	n, msgs := countErrors(es, "lease-consul-template", t0, t0.Add(time.Hour))
	if n != 1 || len(msgs) != 1 || !strings.Contains(msgs[0], "sys/leases/renew/<lease>: permission denied") {
		t.Errorf("%d errors: %v", n, msgs)
	}
}

// envHash must be benchchild's hash (bench/cmd/benchchild): FNV-64a over
// the sorted NAME=VALUE strings, each followed by a zero byte.
func TestEnvHashIsBenchchilds(t *testing.T) {
	// FNV-64a of "S001_F1=a\x00S001_F2=b\x00", computed by hand below.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range []byte("S001_F1=a\x00S001_F2=b\x00") {
		h ^= uint64(c)
		h *= prime
	}
	if got, want := envHash(map[string]string{"S001_F2": "b", "S001_F1": "a"}), fmt.Sprintf("%016x", h); got != want {
		t.Errorf("envHash %s, want %s", got, want)
	}
}

func TestCredentialsRenewalsAndComputedExpiry(t *testing.T) {
	es := parse(t,
		read(t, 0, "lease-aion-exec", "u1", "p1", "L1"),
		renew(t, 10*time.Second, "lease-aion-exec", "L1"),
		renew(t, 350*time.Second, "lease-aion-exec", "L1"), // capped by max TTL
		read(t, 355*time.Second, "lease-aion-exec", "u2", "p2", "L2"),
		renew(t, 356*time.Second, "lease-other", "L2"), // another token: not ours
	)
	cs := credentials(es, "lease-aion-exec", "database/creds/app", ttl, maxTTL)
	if len(cs) != 2 {
		t.Fatalf("%d credentials, want 2", len(cs))
	}
	if cs[0].User != "u1" || cs[0].Renewals != 2 || !cs[0].Computed.Equal(t0.Add(5*time.Millisecond+maxTTL)) {
		t.Errorf("first: %+v", cs[0])
	}
	if cs[1].User != "u2" || cs[1].Renewals != 0 || !cs[1].Computed.Equal(t0.Add(355*time.Second+5*time.Millisecond+ttl)) {
		t.Errorf("second: %+v", cs[1])
	}
	rs := rotations(cs)
	if len(rs) != 1 || rs[0].Lead != 5*time.Second {
		t.Errorf("rotations %+v", rs)
	}
}

func TestEventsAndHolds(t *testing.T) {
	c1 := &Credential{Lease: "L1", User: "u1", Expires: t0.Add(360 * time.Second)}
	c1.hash = envHash(map[string]string{"S001_F1": "u1", "S001_F2": "p1"})
	c2 := &Credential{Lease: "L2", User: "u2", Expires: t0.Add(700 * time.Second)}
	c2.hash = envHash(map[string]string{"S001_F1": "u2", "S001_F2": "p2"})
	ns := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	file := fmt.Sprintf("start 10 %d 2 %s\nhup 10 %d\nterm 10 %d\nstart 11 %d 2 %s\n",
		ns(time.Second), c1.hash, ns(100*time.Second), ns(355*time.Second), ns(356*time.Second), c2.hash)
	evs, err := parseEvents(strings.NewReader(file))
	if err != nil || len(evs) != 4 {
		t.Fatalf("events %v, %v", evs, err)
	}
	hs := holds(evs, []*Credential{c1, c2}, t0.Add(400*time.Second))
	if len(hs) != 2 {
		t.Fatalf("holds %+v", hs)
	}
	if hs[0].User != "u1" || hs[0].Expired || hs[0].Lead != 4*time.Second || hs[0].Open {
		t.Errorf("first hold %+v", hs[0])
	}
	if hs[1].User != "u2" || !hs[1].Open || hs[1].Expired {
		t.Errorf("second hold %+v", hs[1])
	}

	// The second child starts after the first user's lease ended.
	late := fmt.Sprintf("start 10 %d 2 %s\nstart 11 %d 2 %s\nstart 12 %d 0 %016x\n",
		ns(time.Second), c1.hash, ns(362*time.Second), c2.hash, ns(380*time.Second), 0)
	evs, _ = parseEvents(strings.NewReader(late))
	hs = holds(evs, []*Credential{c1, c2}, t0.Add(400*time.Second))
	if !hs[0].Expired || hs[0].Lead != -2*time.Second {
		t.Errorf("late hold %+v", hs[0])
	}
	if !hs[2].Unknown {
		t.Errorf("a start with no known credential: %+v", hs[2])
	}
	if _, err := parseEvents(strings.NewReader("start x y\n")); err == nil {
		t.Error("a bad line parsed")
	}
}

func TestAnalyzeAndReport(t *testing.T) {
	es := parse(t,
		read(t, 0, "lease-aion-exec", "u1", "p1", "L1"),
		renew(t, 10*time.Second, "lease-aion-exec", "L1"),
		read(t, 0, "lease-vault-agent", "a1", "q1", "A1"),
	)
	ns := t0.Add(100 * time.Millisecond).UnixNano()
	evs, _ := parseEvents(strings.NewReader(fmt.Sprintf("start 1 %d 2 %s\n", ns, envHash(map[string]string{"S001_F1": "u1", "S001_F2": "p1"}))))
	spec := toolSpec{Name: ToolAion, Display: "lease-aion-exec", CredsPath: "database/creds/app",
		Start: t0, End: t0.Add(30 * time.Second), TTL: ttl, MaxTTL: maxTTL}
	a := analyzeTool(es, evs, map[string]time.Time{"L1": t0.Add(40 * time.Second)}, spec)
	if a.Run.Total != 2 || a.ChildStarts != 1 || a.Restarts != 0 || a.ExpiredHeld || a.Credentials[0].ExpiresFrom != "vault" {
		t.Errorf("aion-exec: %+v", a)
	}
	if a.PerHour.Total != 1 || a.PerDay.Total != 24 {
		t.Errorf("rates: per hour %+v, per day %+v", a.PerHour, a.PerDay)
	}
	spec.Name, spec.Display = ToolAgent, "lease-vault-agent"
	b := analyzeTool(es, nil, nil, spec)
	if b.Credentials[0].ExpiresFrom != "computed" || b.ChildStarts != 0 {
		t.Errorf("agent: %+v", b)
	}
	md := markdown(Result{Settings: Settings{EffectiveScale: 240, TTL: "15s", MaxTTL: "6m0s", SimDay: "6m0s", RunSeconds: 30},
		Tools: []ToolResult{a, b}})
	for _, want := range []string{"| aion-exec | 1 | 1 | 0 | 0 | **2** | 1.00× |", "| vault-agent | 1 | 0 | 0 | 0 | **1** | 0.50× |", "`update sys/leases/renew` 1"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestLeaseTimes(t *testing.T) {
	ttl, max, eff, err := leaseTimes(240)
	if err != nil || ttl != 15*time.Second || max != 360*time.Second || eff != 240 {
		t.Errorf("240: %s %s %g %v", ttl, max, eff, err)
	}
	if ttl, _, eff, _ := leaseTimes(250); ttl != 14*time.Second || eff < 257 || eff > 258 {
		t.Errorf("250: %s %g", ttl, eff)
	}
	if _, _, _, err := leaseTimes(3600); err == nil {
		t.Error("a 1s TTL accepted")
	}
	if simDur(15*time.Second, 240) != "1h00m" || simDur(-90*time.Second, 240) != "-6h00m" {
		t.Errorf("simDur: %s %s", simDur(15*time.Second, 240), simDur(-90*time.Second, 240))
	}
}

// The model of docs/leases.md's rules at 1 h / 24 h: a renewal every
// ≈37 min on average (2/3 of an hour less a splay of up to 6 min), so ≈38
// renewals, the last one capped, and the next user ≈23:51 after the first.
func TestAionModel(t *testing.T) {
	m := aionModel(time.Hour, 24*time.Hour, 1, 2000, rand.New(rand.NewPCG(1, 2)))
	t.Logf("model at 1h/24h: %+v", m)
	if m.Renewals < 37 || m.Renewals > 39.5 || m.RequestsPerDay < 38 || m.RequestsPerDay > 41 {
		t.Errorf("model %+v", m)
	}
	if m.SimLifetime < "23h48m" || m.SimLifetime > "23h54m" {
		t.Errorf("lifetime %s", m.SimLifetime)
	}
}

func TestFirstCycle(t *testing.T) {
	cs := []*Credential{{Read: t0, Renewals: 35}, {Read: t0.Add(180 * time.Second)}}
	c := firstCycle(cs, 360*time.Second, 240)
	if c == nil || c.RequestsPerDay != 72 || c.SimLifetime != "12h00m" {
		t.Errorf("cycle %+v", c)
	}
	if firstCycle(cs[:1], time.Hour, 1) != nil {
		t.Error("a cycle of one credential")
	}
}
