package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/aionos/aion-exec/internal/sysexits"
)

var (
	// text/template's execution errors read
	// `template: NAME:LINE:COL: executing "NAME" at <CONTEXT>: MESSAGE`;
	// ExecError offers no parts, so they are taken from the text.
	// Compiled on first use: only a failed render needs them, and package
	// initialisation is on every start's path.
	execErrorText = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?s)^template: (.*?:\d+:\d+): executing ".*?" at <(.*?)>: (.*)$`)
	})
	// A missing map key, or a key looked up in a null value.
	missingKeyText = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:map has no entry for key (".*")|nil data; no entry for key (".*")|nil pointer evaluating interface \{\}\.(\w+))$`)
	})
)

// execError turns a text/template execution error into one line naming
// the template, line and column and what went wrong. The original error is
// deliberately not wrapped: its text can quote a secret value (range can't
// iterate over VALUE), so only redacted text leaves this function. Only the
// parts that can hold data are redacted, so that a short value does not
// blank out words of the message around it.
func (t *Template) execError(err error, data Data) error {
	redact := func(s string) string { return newRedactor(data).redact(s) }
	wrap := func(where, msg string) error {
		return sysexits.Wrap(sysexits.DataErr, fmt.Errorf("render template %s: %s", where, msg))
	}
	m := execErrorText().FindStringSubmatch(err.Error())
	if m == nil {
		return wrap(t.Name, redact(strings.TrimPrefix(err.Error(), "template: ")))
	}
	loc, context, msg := m[1], m[2], m[3]
	var ve *valueError
	var re *requiredError
	var ee template.ExecError
	switch {
	case errors.As(err, &ve):
		return wrap(loc, ve.Error()) // holds no value by construction
	case errors.As(err, &re):
		return wrap(loc, "required: "+redact(re.msg))
	case errors.As(err, &ee) && errors.Unwrap(ee.Err) != nil:
		// A function failed: "error calling NAME: " is template text,
		// the function's own error may not be.
		inner := errors.Unwrap(ee.Err).Error()
		return wrap(loc, "at <"+context+">: "+strings.TrimSuffix(msg, inner)+redact(inner))
	}
	if k := missingKeyText().FindStringSubmatch(msg); k != nil {
		key := k[3]
		for _, q := range k[1:3] {
			if q != "" {
				key, _ = strconv.Unquote(q)
			}
		}
		return wrap(loc, t.missingKey(loc, key))
	}
	return wrap(loc, "at <"+context+">: "+redact(msg))
}

// missingKey names the secret and the key path of a missing-key error at
// loc, using the chain that Load recorded there. Key names come from the
// template's text, so they are safe to print.
func (t *Template) missingKey(loc, key string) string {
	var c chain
	ok := false
	for _, ch := range t.chains {
		if l, _ := t.tmpl.Tree.ErrorContext(ch.node); l == loc {
			c, ok = ch, true
			break
		}
	}
	i := slices.Index(c.idents, key)
	if !ok || i < 0 {
		return "no key " + key
	}
	switch {
	case c.base.root && i == 0:
		return "no secret or value named " + key
	case c.base.root:
		return fmt.Sprintf("secret %s has no key %s", c.idents[0], strings.Join(c.idents[1:i+1], "."))
	case c.base.secret != "":
		path := append(slices.Clip(c.base.path), c.idents[:i+1]...)
		return fmt.Sprintf("secret %s has no key %s", c.base.secret, strings.Join(path, "."))
	}
	return fmt.Sprintf("no key %s in %s", key, strings.Join(c.idents[:i+1], "."))
}

// redactor blanks secret values out of error text, as consul-template
// does, for the parts of a message that can hold data.
type redactor struct{ values []string } // longest first

func newRedactor(data Data) redactor {
	var values []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case nil:
		case string:
			values = append(values, v)
		case json.Number:
			values = append(values, string(v))
		default:
			values = append(values, fmt.Sprint(v))
		}
	}
	for name, secret := range data {
		if name != EnvKey {
			walk(secret)
		}
	}
	// Longest first, so that a value containing another is blanked whole.
	slices.SortFunc(values, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	values = slices.Compact(values)
	if len(values) > 0 && values[len(values)-1] == "" {
		values = values[:len(values)-1]
	}
	return redactor{values}
}

// shortValue is the length below which a value is blanked only where it
// stands alone: "b" or "1" would otherwise blank letters out of every word
// and number of the message, and a value that short hides nothing.
const shortValue = 4

func (r redactor) redact(s string) string {
	var b strings.Builder
next:
	for i := 0; i < len(s); {
		for _, v := range r.values {
			if strings.HasPrefix(s[i:], v) && (len(v) >= shortValue || alone(s, i, i+len(v))) {
				b.WriteString("[redacted]")
				i += len(v)
				continue next
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// alone reports whether s[i:j] has no letter or digit on either side.
func alone(s string, i, j int) bool {
	word := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	return (i == 0 || !word(s[i-1])) && (j == len(s) || !word(s[j]))
}
