package kit

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"time"
)

// AuditLines decodes each line of a Vault file audit log into a T (each
// command declares the fields it needs) and keeps those keep accepts;
// lines that do not parse are skipped.
func AuditLines[T any](r io.Reader, keep func(*T) bool) ([]T, error) {
	var out []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e T
		if json.Unmarshal(sc.Bytes(), &e) != nil || !keep(&e) {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// AuditEntry is what aionbench and aionfleet read of an audit log line.
type AuditEntry struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // request or response
	Request struct {
		ID        string `json:"id"`
		Path      string `json:"path"`
		Operation string `json:"operation"`
	} `json:"request"`
	Auth struct {
		DisplayName string `json:"display_name"`
	} `json:"auth"`
}

// Who is the display name of the token the request was made with,
// without the "token-" that Vault puts before it.
func (e *AuditEntry) Who() string { return strings.TrimPrefix(e.Auth.DisplayName, "token-") }

// Exchanges are the request and response entries of an audit log, in its
// order.
func Exchanges(r io.Reader) ([]AuditEntry, error) {
	return AuditLines(r, func(e *AuditEntry) bool { return e.Type == "request" || e.Type == "response" })
}
