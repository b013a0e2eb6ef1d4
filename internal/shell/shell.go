// Package shell quotes values for POSIX shells, for `aion-exec env`, the
// shellQuote template function and dev bootstrap's env file. It must stay
// the one place that does, so that what one writes the others read back.
package shell

import "strings"

// Quote single-quotes s: every byte is literal inside single quotes, and an
// embedded quote closes the quoting, is escaped as \' and reopens it.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Unquote reverses Quote; a bare word is returned as it is.
func Unquote(s string) string {
	if !strings.HasPrefix(s, "'") {
		return s
	}
	var b strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, `\'`):
			b.WriteByte('\'')
			s = s[2:]
		case s[0] == '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				b.WriteString(s[1:])
				return b.String()
			}
			b.WriteString(s[1 : end+1])
			s = s[end+2:]
		default:
			b.WriteByte(s[0])
			s = s[1:]
		}
	}
	return b.String()
}
