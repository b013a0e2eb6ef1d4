package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Compiled on first use, not in every start's package init.
var (
	secretVarRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^AION_([A-Z0-9_]+)_SECRET_PATH$`) })
	secretNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z0-9_]+$`) })
)

// secretList collects --secret NAME=PATH flags as AION_<NAME>_SECRET_PATH.
type secretList [][2]string

func (l *secretList) String() string { return "" }
func (l *secretList) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	name = strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if !ok || !secretNameRE().MatchString(name) || path == "" {
		return fmt.Errorf("want NAME=PATH with NAME of letters, digits, _ or -, got %q", v)
	}
	*l = append(*l, [2]string{"AION_" + name + "_SECRET_PATH", path})
	return nil
}

// secrets gathers every AION_<NAME>_SECRET_PATH of environ, overridden by
// --secret flags, with ${AION_ENV} expanded to label, sorted by name.
func secrets(environ []string, flags *secretList, label string, ps *Problems) []Secret {
	paths := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && secretVarRE().MatchString(k) && strings.TrimSpace(v) != "" {
			paths[k] = v
		}
	}
	for _, f := range *flags {
		paths[f[0]] = f[1]
	}
	var out []Secret
	for k, v := range paths {
		s := Secret{Name: strings.ToLower(secretVarRE().FindStringSubmatch(k)[1]), Var: k}
		ok := true
		for _, part := range strings.Split(v, ",") {
			p, perr := secretPath(strings.TrimSpace(part), label)
			if perr != "" {
				p2 := k
				if strings.Contains(v, ",") {
					p2 = fmt.Sprintf("%s (part %q)", k, strings.TrimSpace(part))
				}
				ps.add(p2, perr)
				ok = false
				continue
			}
			s.Paths = append(s.Paths, p)
		}
		if ok {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Secret) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// secretPath expands and checks one path, or says what is wrong with it.
func secretPath(p, label string) (string, string) {
	if strings.Contains(p, "${AION_ENV}") {
		if label == "" {
			return "", "uses ${AION_ENV} but AION_ENV is not set"
		}
		p = strings.ReplaceAll(p, "${AION_ENV}", label)
	}
	p = strings.Trim(p, "/")
	path, query, _ := strings.Cut(p, "?")
	if _, err := url.ParseQuery(query); err != nil {
		return "", "has parameters after ? that do not parse as name=value&...: " + err.Error()
	}
	switch {
	case strings.Contains(p, "$"):
		return "", "holds a $ that is not ${AION_ENV}; only ${AION_ENV} is expanded"
	case strings.Contains(path, "//") || path == "":
		return "", "is not a secret path such as aionos/dev/db-main"
	case slices.Contains(strings.Split(path, "/"), ".."):
		return "", "must not contain .."
	}
	return p, ""
}
