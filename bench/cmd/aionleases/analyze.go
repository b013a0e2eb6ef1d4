package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// toolSpec is what analyzeTool needs to know of one tool's run.
type toolSpec struct {
	Name, Display, CredsPath string
	Start, End               time.Time
	TTL, MaxTTL              time.Duration
}

// analyzeTool derives one tool's numbers from the audit log, the child's
// events and the leases' ends as Vault gave them (expires, by lease ID).
func analyzeTool(es []auditEntry, evs []childEvent, expires map[string]time.Time, s toolSpec) ToolResult {
	hour, day := s.TTL, s.MaxTTL
	far := s.End.Add(24 * time.Hour)
	t := ToolResult{Name: s.Name, Display: s.Display}
	t.Run, t.Paths = count(es, s.Display, s.CredsPath, s.Start, s.End)
	span := s.End.Sub(s.Start)
	t.PerHour = t.Run.per(float64(span) / float64(hour))
	t.PerDay = t.Run.per(float64(span) / float64(day))
	dayEnd := s.Start.Add(day)
	if dayEnd.After(s.End) {
		dayEnd = s.End
	}
	t.Day1, _ = count(es, s.Display, s.CredsPath, s.Start, dayEnd)
	t.Exit, _ = count(es, s.Display, s.CredsPath, s.End, far)
	t.Errors, t.ErrorSamples = countErrors(es, s.Display, s.Start, far)
	t.Hourly = hourly(es, s.Display, s.CredsPath, s.Start, s.End, hour)
	t.Credentials = credentials(es, s.Display, s.CredsPath, s.TTL, s.MaxTTL)
	for _, c := range t.Credentials {
		if e, ok := expires[c.Lease]; ok {
			c.Expires, c.ExpiresFrom = e, "vault"
		} else {
			c.Expires, c.ExpiresFrom = c.Computed, "computed"
		}
	}
	t.Rotations = rotations(t.Credentials)
	t.Cycle = firstCycle(t.Credentials, day, float64(time.Hour)/float64(hour))
	t.Holds = holds(evs, t.Credentials, s.End)
	for _, ev := range evs {
		switch {
		case ev.Kind == "start" && ev.At.Before(s.End):
			t.ChildStarts++
		case ev.Kind == "hup" && ev.At.Before(s.End):
			t.Hups++
		}
	}
	if t.ChildStarts > 0 {
		t.Restarts = t.ChildStarts - 1
	}
	for _, h := range t.Holds {
		if h.Expired || h.Unknown {
			t.ExpiredHeld = true
		}
		if h.Open || h.Unknown {
			continue
		}
		if t.MinHoldLead == nil || h.Lead < *t.MinHoldLead {
			l := h.Lead
			t.MinHoldLead = &l
		}
	}
	for _, r := range t.Rotations {
		if t.MinRotationLead == nil || r.Lead < *t.MinRotationLead {
			l := r.Lead
			t.MinRotationLead = &l
		}
	}
	return t
}

// results derives every tool's numbers from the audit log, the children's
// events and the leases' ends as Vault gave them.
func (l *leaseRun) results(expires map[string]time.Time, polls int) (Result, error) {
	c := l.c
	f, err := os.Open(l.auditPath())
	if err != nil {
		return Result{}, err
	}
	es, err := parseAudit(f)
	f.Close()
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: l.loadStart, LoadEnd: l.loadEnd,
			LoadAfter: kit.Load1(), Kernel: kit.Kernel()},
		Settings: Settings{Scale: c.scale, EffectiveScale: l.scale, Days: c.days, TTL: l.ttl.String(), MaxTTL: l.maxTTL.String(),
			SimHour: l.ttl.String(), SimDay: l.maxTTL.String(), RunSeconds: l.end.Sub(l.t0).Seconds(), TokenTTL: c.tokenTTL,
			Versions: parseVersions(c.versions), WatchPolls: polls, Started: l.t0.UTC()},
	}
	res.DocsPrediction = 39
	rng := rand.New(rand.NewPCG(uint64(l.t0.UnixNano()), 1))
	res.AionModel = aionModel(l.ttl, l.maxTTL, l.scale, 5000, rng)
	res.AionModel1h = aionModel(time.Hour, 24*time.Hour, 1, 5000, rng)
	for _, p := range l.procs {
		evf, err := os.ReadFile(p.events)
		if err != nil && !os.IsNotExist(err) {
			return Result{}, err
		}
		evs, err := parseEvents(strings.NewReader(string(evf)))
		if err != nil {
			return Result{}, err
		}
		tr := analyzeTool(es, evs, expires, toolSpec{
			Name: p.name, Display: c.namePrefix + p.name, CredsPath: c.credsPath,
			Start: p.start, End: l.end, TTL: l.ttl, MaxTTL: l.maxTTL,
		})
		tr.Exited = l.exited[p.name]
		res.Tools = append(res.Tools, tr)
	}
	return res, nil
}

// Credential is one database user a tool obtained.
type Credential struct {
	Lease    string    `json:"lease_id"`
	User     string    `json:"username"`
	Read     time.Time `json:"read"`
	Renewals int       `json:"renewals"`
	// LastRenewal is when the last renewal of this lease was answered.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// Expires is the lease's end: as Vault's sys/leases/lookup last said
	// it during the run (ExpiresFrom "vault"), else computed from the
	// audit log and the role's TTLs (ExpiresFrom "computed").
	Expires     time.Time `json:"expires,omitzero"`
	ExpiresFrom string    `json:"expires_from,omitempty"`
	// Computed is the end computed from the audit log: the read or the last
	// renewal plus the role's default TTL, capped at the read plus its max
	// TTL.
	Computed time.Time `json:"computed_expiry"`
	hash     string
	password string
}

// str is a string field of a response's data.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// credentials are the users name's token obtained, in order, with their
// renewals and computed ends.
func credentials(es []auditEntry, name, credsPath string, ttl, maxTTL time.Duration) []*Credential {
	var out []*Credential
	by := map[string]*Credential{}
	for _, e := range es {
		if e.Type != "response" || e.who() != name || e.Error != "" {
			continue
		}
		switch classify(e.Request.Path, credsPath) {
		case ClassCreds:
			if e.Response.Secret == nil || e.Response.Secret.LeaseID == "" {
				continue
			}
			c := &Credential{Lease: e.Response.Secret.LeaseID, User: str(e.Response.Data, "username"),
				Read: e.Time, password: str(e.Response.Data, "password")}
			c.hash = envHash(map[string]string{"S001_F1": c.User, "S001_F2": c.password})
			c.Computed = e.Time.Add(ttl)
			out = append(out, c)
			by[c.Lease] = c
		case ClassRenew:
			id := str(e.Request.Data, "lease_id")
			if id == "" {
				id = str(e.Request.Data, "url_lease_id")
			}
			if id == "" {
				if i := strings.Index(e.Request.Path, credsPath+"/"); i > 0 {
					id = e.Request.Path[i:]
				}
			}
			c := by[id]
			if c == nil {
				continue
			}
			c.Renewals++
			c.LastRenewal = e.Time
			c.Computed = minTime(e.Time.Add(ttl), c.Read.Add(maxTTL))
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// envHash is benchchild's hash of the S###_F# variables it got: FNV-64a
// over the sorted NAME=VALUE strings, each followed by a zero byte.
func envHash(vars map[string]string) string {
	kvs := make([]string, 0, len(vars))
	for k, v := range vars {
		kvs = append(kvs, k+"="+v)
	}
	sort.Strings(kvs)
	h := fnv.New64a()
	for _, kv := range kvs {
		h.Write([]byte(kv))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// childEvent is one line of benchchild's events file.
type childEvent struct {
	Kind  string // start, hup, term
	PID   int
	At    time.Time
	NVars int
	Hash  string
}

// parseEvents reads a benchchild events file.
func parseEvents(r io.Reader) ([]childEvent, error) {
	var out []childEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		pid, err1 := strconv.Atoi(f[1])
		ns, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad event line %q", sc.Text())
		}
		ev := childEvent{Kind: f[0], PID: pid, At: time.Unix(0, ns)}
		if ev.Kind == "start" && len(f) >= 5 {
			ev.NVars, _ = strconv.Atoi(f[3])
			ev.Hash = f[4]
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, sc.Err()
}

// Hold is one span in which a child process ran with one credential in its
// environment: from its start to the next child's start (or the end of the
// measured run).
type Hold struct {
	PID     int       `json:"pid"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	User    string    `json:"username,omitempty"`
	Lease   string    `json:"lease_id,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	// Lead is how long before its credential's lease ended the hold ended
	// (negative: the child ran on an expired user); zero with Unknown.
	Lead    time.Duration `json:"lead_ns"`
	Expired bool          `json:"expired"`
	// Open: the hold lasted to the end of the run, and its lease had not
	// ended yet (not a finding).
	Open    bool `json:"open"`
	Unknown bool `json:"unknown_credential"`
}

// holds maps each child start to the credential in its environment.
func holds(evs []childEvent, creds []*Credential, end time.Time) []Hold {
	byHash := map[string]*Credential{}
	for _, c := range creds {
		byHash[c.hash] = c
	}
	var starts []childEvent
	for _, ev := range evs {
		if ev.Kind == "start" && ev.At.Before(end) {
			starts = append(starts, ev)
		}
	}
	var out []Hold
	for i, s := range starts {
		h := Hold{PID: s.PID, From: s.At, To: end}
		if i+1 < len(starts) {
			h.To = starts[i+1].At
		}
		c := byHash[s.Hash]
		if c == nil {
			h.Unknown = true
			out = append(out, h)
			continue
		}
		h.User, h.Lease, h.Expires = c.User, c.Lease, c.Expires
		if h.Expires.IsZero() {
			h.Expires = c.Computed
		}
		h.Lead = h.Expires.Sub(h.To)
		h.Expired = h.Lead < 0
		h.Open = i+1 == len(starts) && !h.Expired
		out = append(out, h)
	}
	return out
}

// Rotation is one change of credential by a tool: a new user read while the
// previous one's lease still ran (Lead > 0) or after it had ended.
type Rotation struct {
	At   time.Time     `json:"at"`
	Lead time.Duration `json:"lead_ns"`
}

// rotations lists every read after the first with how long before the
// previous lease's end it came.
func rotations(creds []*Credential) []Rotation {
	var out []Rotation
	for i := 1; i < len(creds); i++ {
		prev := creds[i-1]
		exp := prev.Expires
		if exp.IsZero() {
			exp = prev.Computed
		}
		out = append(out, Rotation{At: creds[i].Read, Lead: exp.Sub(creds[i].Read)})
	}
	return out
}
