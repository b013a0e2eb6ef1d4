package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// auditEntry is the part of a file audit device line (log_raw = true) that
// the lease benchmark reads.
type auditEntry struct {
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	Auth struct {
		DisplayName string `json:"display_name"`
	} `json:"auth"`
	Request struct {
		Path      string         `json:"path"`
		Operation string         `json:"operation"`
		Data      map[string]any `json:"data"`
	} `json:"request"`
	Response struct {
		Data   map[string]any `json:"data"`
		Secret *struct {
			LeaseID string `json:"lease_id"`
		} `json:"secret"`
	} `json:"response"`
	Error string `json:"error"`
}

// who is the display name of the token that made e, without Vault's
// "token-" prefix.
func (e auditEntry) who() string { return strings.TrimPrefix(e.Auth.DisplayName, "token-") }

// parseAudit reads every request and response entry of a file audit log.
func parseAudit(r io.Reader) ([]auditEntry, error) {
	return kit.AuditLines(r, func(e *auditEntry) bool { return e.Type == "request" || e.Type == "response" })
}

// Request classes of the report.
const (
	ClassCreds = "creds"  // read of the dynamic secret: a new database user
	ClassRenew = "renew"  // lease renewal
	ClassToken = "token"  // the tool's own token: lookup-self, renew-self
	ClassOther = "other"  // anything else (mount listings, revocations, ...)
	classNone  = "ignore" // not a request of a tool
)

// Classes in report order.
var Classes = []string{ClassCreds, ClassRenew, ClassToken, ClassOther}

// classify puts a request path of the tools into its class.
func classify(path, credsPath string) string {
	switch {
	case path == credsPath:
		return ClassCreds
	case path == "sys/leases/renew" || strings.HasPrefix(path, "sys/leases/renew/") ||
		path == "sys/renew" || strings.HasPrefix(path, "sys/renew/"):
		return ClassRenew
	case strings.HasPrefix(path, "auth/token/lookup") || strings.HasPrefix(path, "auth/token/renew"):
		return ClassToken
	}
	return ClassOther
}

// Counts is a number of requests per class, with their sum.
type Counts struct {
	Creds int `json:"creds"`
	Renew int `json:"renew"`
	Token int `json:"token"`
	Other int `json:"other"`
	Total int `json:"total"`
}

func (c *Counts) add(class string) {
	switch class {
	case ClassCreds:
		c.Creds++
	case ClassRenew:
		c.Renew++
	case ClassToken:
		c.Token++
	default:
		c.Other++
	}
	c.Total++
}

// Get is the count of one class.
func (c Counts) Get(class string) int {
	switch class {
	case ClassCreds:
		return c.Creds
	case ClassRenew:
		return c.Renew
	case ClassToken:
		return c.Token
	case ClassOther:
		return c.Other
	}
	return c.Total
}

// Rates is Counts divided by a number of simulated hours or days.
type Rates struct {
	Creds float64 `json:"creds"`
	Renew float64 `json:"renew"`
	Token float64 `json:"token"`
	Other float64 `json:"other"`
	Total float64 `json:"total"`
}

func (c Counts) per(units float64) Rates {
	if units <= 0 {
		return Rates{}
	}
	return Rates{float64(c.Creds) / units, float64(c.Renew) / units, float64(c.Token) / units,
		float64(c.Other) / units, float64(c.Total) / units}
}

// Get is the rate of one class.
func (r Rates) Get(class string) float64 {
	switch class {
	case ClassCreds:
		return r.Creds
	case ClassRenew:
		return r.Renew
	case ClassToken:
		return r.Token
	case ClassOther:
		return r.Other
	}
	return r.Total
}

// count counts the requests made with name's token in [from, to).
func count(es []auditEntry, name, credsPath string, from, to time.Time) (Counts, map[string]int) {
	var c Counts
	paths := map[string]int{}
	for _, e := range es {
		if e.Type != "request" || e.who() != name || e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		c.add(classify(e.Request.Path, credsPath))
		paths[e.Request.Operation+" "+leaseSuffix(e.Request.Path)]++
	}
	return c, paths
}

// leaseSuffix folds lease IDs in paths (sys/leases/renew/database/creds/app/ID).
func leaseSuffix(p string) string {
	if i := strings.Index(p, "/database/creds/"); i > 0 && (strings.HasPrefix(p, "sys/leases/") || strings.HasPrefix(p, "sys/renew/")) {
		return p[:i] + "/<lease>"
	}
	return p
}

// errors counts the responses with an error to name's requests in [from, to).
func countErrors(es []auditEntry, name string, from, to time.Time) (int, []string) {
	n := 0
	seen := map[string]bool{}
	var msgs []string
	for _, e := range es {
		if e.Type != "response" || e.Error == "" || e.who() != name || e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		n++
		m := e.Request.Operation + " " + leaseSuffix(e.Request.Path) + ": " + e.Error
		if !seen[m] && len(msgs) < 5 {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	return n, msgs
}

// hourly counts name's requests per simulated hour since from, by class.
func hourly(es []auditEntry, name, credsPath string, from, to time.Time, hour time.Duration) []Counts {
	n := int((to.Sub(from) + hour - 1) / hour)
	if n <= 0 {
		return nil
	}
	out := make([]Counts, n)
	for _, e := range es {
		if e.Type != "request" || e.who() != name || e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		out[int(e.Time.Sub(from)/hour)].add(classify(e.Request.Path, credsPath))
	}
	return out
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
