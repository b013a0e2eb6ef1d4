package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Var is one setting's typed value. It implements envconfig.Decoder (the
// variable) and flag.Value (the flag), so both go through the same parser.
// A value that does not parse is kept as a problem, not returned: Load
// reports every bad setting at once, each naming where it came from. An
// empty value counts as unset, so compose files may write
// `AION_X: ${AION_X:-}`.
type Var[T any] struct {
	V   T
	src string // the variable, fallback or --flag that set V; "" for the default
	err error
}

// Decode is envconfig's hook.
func (v *Var[T]) Decode(s string) error {
	v.set(s, "")
	return nil
}

func (v *Var[T]) set(s, src string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	x, err := parse[T](s)
	if err != nil {
		v.err, v.src = err, src
		return
	}
	v.V, v.src, v.err = x, src, nil
}

// Set reports whether the value came from the environment or a flag rather
// than from the default.
func (v *Var[T]) Set() bool { return v.src != "" }

// From names where the value came from, for messages.
func (v *Var[T]) From() string { return v.src }

// setting is what Load needs of any Var, whatever its type.
type setting interface {
	set(s, src string)
	problem() (src string, err error)
	sourced(src string)
	Set() bool
}

func (v *Var[T]) problem() (string, error) { return v.src, v.err }

// sourced names the variable envconfig decoded, which Decode cannot know.
func (v *Var[T]) sourced(src string) {
	if v.src == "" {
		v.src = src
	}
}

// parse is the one parser of setting values, by type.
func parse[T any](s string) (T, error) {
	var out T
	s = strings.TrimSpace(s)
	var err error
	switch p := any(&out).(type) {
	case *string:
		*p = s
	case *bool:
		if *p, err = strconv.ParseBool(s); err != nil {
			err = fmt.Errorf("is %q; want true or false", s)
		}
	case *time.Duration:
		*p, err = parseDuration(s)
	case *[]string:
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				*p = append(*p, f)
			}
		}
	case *os.FileMode:
		*p, err = parseMode(s)
	case *syscall.Signal:
		*p, err = parseSignal(s)
	default:
		panic(fmt.Sprintf("config: no parser for %T", out))
	}
	return out, err
}

// parseDuration accepts Go durations ("90s", "5m") and plain seconds ("90").
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("is %q; want a duration such as 30s or a number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("is %q; want a positive duration", s)
	}
	return d, nil
}

func parseMode(s string) (os.FileMode, error) {
	mode, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil || mode&^0o777 != 0:
		return 0, fmt.Errorf("is %q; want an octal permission such as 0600", s)
	case mode&0o007 != 0:
		return 0, fmt.Errorf("is %q; rendered files hold secrets and must not be world-accessible", s)
	}
	return os.FileMode(mode), nil
}

// parseSignal accepts "SIGHUP", "HUP", "hup", a number, or "none" (0).
func parseSignal(s string) (syscall.Signal, error) {
	if strings.EqualFold(s, "none") {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	if sig := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(s), "SIG")); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("is %q; want a signal name such as SIGHUP", s)
}

// ParseSignal parses a signal the way every signal setting does.
func ParseSignal(s string) (syscall.Signal, bool) {
	sig, err := parseSignal(s)
	return sig, err == nil && sig != 0
}
