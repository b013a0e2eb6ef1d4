package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var (
	secretVarRE  = regexp.MustCompile(`^AION_([A-Z0-9_]+)_SECRET_PATH$`)
	secretNameRE = regexp.MustCompile(`^[A-Z0-9_]+$`)
)

// secretList collects --secret NAME=PATH flags as AION_<NAME>_SECRET_PATH.
type secretList [][2]string

func (l *secretList) String() string { return "" }
func (l *secretList) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	name = strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if !ok || !secretNameRE.MatchString(name) || path == "" {
		return fmt.Errorf("want NAME=PATH with NAME of letters, digits, _ or -, got %q", v)
	}
	*l = append(*l, [2]string{"AION_" + name + "_SECRET_PATH", path})
	return nil
}

// secrets gathers every AION_<NAME>_SECRET_PATH of environ, overridden by
// --secret flags, with ${AION_ENV} expanded to label, sorted by name.
func secrets(environ []string, flags *secretList, label string, p *Problems) []Secret {
	paths := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && secretVarRE.MatchString(k) && strings.TrimSpace(v) != "" {
			paths[k] = v
		}
	}
	for _, f := range *flags {
		paths[f[0]] = f[1]
	}
	var out []Secret
	for k, v := range paths {
		s := Secret{Name: strings.ToLower(secretVarRE.FindStringSubmatch(k)[1]), Var: k, Path: strings.TrimSpace(v)}
		if strings.Contains(s.Path, "${AION_ENV}") {
			if label == "" {
				p.add(k, "uses ${AION_ENV} but AION_ENV is not set")
				continue
			}
			s.Path = strings.ReplaceAll(s.Path, "${AION_ENV}", label)
		}
		s.Path = strings.Trim(s.Path, "/")
		switch {
		case strings.Contains(s.Path, "$"):
			p.add(k, "holds a $ that is not ${AION_ENV}; only ${AION_ENV} is expanded")
		case strings.Contains(s.Path, "//") || s.Path == "":
			p.add(k, "is not a secret path such as aionos/dev/db-main")
		case slices.Contains(strings.Split(s.Path, "/"), ".."):
			p.add(k, "must not contain ..")
		default:
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Secret) int { return strings.Compare(a.Name, b.Name) })
	return out
}
