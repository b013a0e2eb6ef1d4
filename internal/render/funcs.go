package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/aionos/aion-exec/internal/shell"
)

// funcs is the small, hand-written function set documented in
// docs/templates.md. A general library such as sprig would pull in a dozen
// modules for a few one-line helpers.
func (s *Set) funcs(kind Kind) template.FuncMap {
	return template.FuncMap{
		valueFunc:      func(desc string, v any) (string, error) { return checkValue(kind, desc, v) },
		"pgURL":        pgURL,
		"pgDSN":        pgDSN,
		"toJSON":       func(v any) (string, error) { return marshal(v, "") },
		"toPrettyJSON": func(v any) (string, error) { return marshal(v, "  ") },
		"base64Encode": base64Encode,
		"base64Decode": base64Decode,
		"shellQuote":   shellQuote,
		"default":      defaultValue,
		"required":     required,
		"renderPath":   s.renderPath,
	}
}

// valueError is a printed value that cannot go into the output. It holds a
// description of the action, never the value.
type valueError struct{ desc, problem string }

func (e *valueError) Error() string { return "value of " + e.desc + " " + e.problem }

// checkValue is what every printing action ends in (see valueFunc). It
// prints v the way text/template would, except that null, objects and
// arrays are errors rather than "<no value>" or Go map syntax, and that an
// env value must not break its line.
func checkValue(kind Kind, desc string, v any) (string, error) {
	switch v.(type) {
	case nil:
		return "", &valueError{desc, "is missing or null"}
	case map[string]any, []any, Data:
		return "", &valueError{desc, "is a JSON object or array; use toJSON"}
	}
	s := fmt.Sprint(v)
	if kind == KindEnv {
		switch {
		case strings.ContainsAny(s, "\n\r"):
			return "", &valueError{desc, "contains a line break"}
		case strings.ContainsRune(s, 0):
			return "", &valueError{desc, "contains a NUL byte"}
		}
	}
	return s, nil
}

// scalar is v as text when it is a JSON string, number or boolean.
func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool, float64:
		return fmt.Sprint(v), nil
	case nil:
		return "", errors.New("value is null")
	}
	return "", fmt.Errorf("value is a %T, not a string or number", v)
}

// field returns m[key] as text; ok is false when the key is absent or null.
func field(m map[string]any, key string) (s string, ok bool, err error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false, nil
	}
	if s, err = scalar(v); err != nil {
		return "", false, fmt.Errorf("key %s: %w", key, err)
	}
	return s, true, nil
}

// pgConn is a PostgreSQL connection read from a secret map.
type pgConn struct {
	user, password, host, port, dbname, sslmode string
	hasPassword, hasPort                        bool
}

func readPG(m map[string]any) (c pgConn, err error) {
	var ok bool
	if c.user, ok, err = field(m, "username"); err != nil || !ok {
		return c, orMissing(err, "username")
	}
	if c.host, ok, err = field(m, "host"); err != nil || !ok {
		return c, orMissing(err, "host")
	}
	if c.password, c.hasPassword, err = field(m, "password"); err != nil {
		return c, err
	}
	if c.dbname, _, err = field(m, "database"); err != nil {
		return c, err
	}
	if c.sslmode, _, err = field(m, "sslmode"); err != nil {
		return c, err
	}
	if c.port, c.hasPort, err = field(m, "port"); err != nil {
		return c, err
	}
	if c.hasPort {
		n, err := strconv.ParseUint(c.port, 10, 16)
		if err != nil || n == 0 {
			return c, errors.New("key port: not a port number (1-65535)")
		}
		c.port = strconv.FormatUint(n, 10)
	}
	return c, nil
}

func orMissing(err error, key string) error {
	if err != nil {
		return err
	}
	return errors.New("no key " + key)
}

// pgURL builds a postgres:// URL from a secret with username and host and
// optional password, port, database and sslmode. Every part is
// percent-encoded except RFC 3986 unreserved characters, which every URL
// parser (libpq, pgx, JDBC, SQLAlchemy) decodes the same way.
func pgURL(m map[string]any) (string, error) {
	c, err := readPG(m)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("postgres://")
	if c.user != "" || c.hasPassword {
		b.WriteString(escape(c.user))
		if c.hasPassword {
			b.WriteString(":" + escape(c.password))
		}
		b.WriteString("@")
	}
	var query []string
	switch {
	case strings.HasPrefix(c.host, "/"):
		// A Unix socket directory cannot be a URL host; libpq takes it
		// as a query parameter.
		query = append(query, "host="+escape(c.host))
	case strings.Contains(c.host, ":"):
		// An IPv6 literal, bracketed as written. A zone must be an
		// interface name: URL parsers refuse escaped punctuation there.
		addr, err := netip.ParseAddr(c.host)
		ip, zone, hasZone := strings.Cut(c.host, "%")
		if err != nil || !addr.Is6() || hasZone && !validHost(zone) {
			return "", errors.New("key host: not a host name or IP address")
		}
		if hasZone {
			ip += "%25" + zone
		}
		b.WriteString("[" + ip + "]")
	case validHost(c.host):
		b.WriteString(c.host)
	default:
		return "", errors.New("key host: not a host name or IP address")
	}
	if c.hasPort {
		b.WriteString(":" + c.port)
	}
	b.WriteString("/" + escape(c.dbname))
	if c.sslmode != "" {
		query = append(query, "sslmode="+escape(c.sslmode))
	}
	if len(query) > 0 {
		b.WriteString("?" + strings.Join(query, "&"))
	}
	return b.String(), nil
}

func validHost(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// escape percent-encodes all but RFC 3986 unreserved characters.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + string(hex[c>>4]) + string(hex[c&15]))
	}
	return b.String()
}

// pgDSN builds a libpq keyword/value connection string from the same keys
// as pgURL.
func pgDSN(m map[string]any) (string, error) {
	c, err := readPG(m)
	if err != nil {
		return "", err
	}
	kv := []string{"host=" + dsnQuote(c.host)}
	if c.hasPort {
		kv = append(kv, "port="+c.port)
	}
	kv = append(kv, "user="+dsnQuote(c.user))
	if c.hasPassword {
		kv = append(kv, "password="+dsnQuote(c.password))
	}
	if c.dbname != "" {
		kv = append(kv, "dbname="+dsnQuote(c.dbname))
	}
	if c.sslmode != "" {
		kv = append(kv, "sslmode="+dsnQuote(c.sslmode))
	}
	return strings.Join(kv, " "), nil
}

// dsnQuote quotes a libpq value when it is empty or holds whitespace, a
// quote or a backslash, escaping quotes and backslashes with a backslash.
func dsnQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\r\v\f'\\") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// marshal is JSON without HTML escaping: these files are read by programs,
// and "<" as \u003c only confuses people reading them.
func marshal(v any, indent string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func base64Encode(v any) (string, error) {
	s, err := scalar(v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func base64Decode(v any) (string, error) {
	s, err := scalar(v)
	if err != nil {
		return "", err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

// shellQuote quotes v for a POSIX shell: in single quotes, where an
// embedded quote closes the quoting, is escaped and reopens it.
func shellQuote(v any) (string, error) {
	s, err := scalar(v)
	if err != nil {
		return "", err
	}
	return shell.Quote(s), nil
}

// defaultValue is v unless it is null, missing or "", then def. Unlike
// sprig's default, false and 0 are kept: they are real settings.
func defaultValue(def, v any) any {
	if v == nil || v == "" {
		return def
	}
	return v
}

// requiredError carries the template author's message.
type requiredError struct{ msg string }

func (e *requiredError) Error() string { return e.msg }

// required is v, or an error with msg when v is null, missing or "". The
// message never includes v.
func required(msg string, v any) (any, error) {
	if v == nil || v == "" {
		return nil, &requiredError{msg}
	}
	return v, nil
}

// renderPath is the absolute path of a file output of this set, so that an
// env template can point the child at a rendered file.
func (s *Set) renderPath(name string) (string, error) {
	if !s.files[name] {
		return "", errors.New("no active template renders " + name)
	}
	return filepath.Join(s.renderDir, name), nil
}
