package main

import (
	"io"
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
