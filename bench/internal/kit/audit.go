package kit

import (
	"bufio"
	"encoding/json"
	"io"
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
