package refresh

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/aionos/aion-exec/internal/render"
)

// WarnLeasedEnv logs one warning when values of a leased secret reach the
// child's environment and AION_RESTART_ON is not env: a rotation then only
// reloads the child (a new password is not a host change), and a running
// process cannot see a new environment, so it keeps the old user until
// Vault revokes it. It names the secrets and the variables, never a value.
// The supervised mode calls it once, after the first pass.
func (r *Refresher) WarnLeasedEnv() {
	if r.opts.RestartOn == "env" {
		return
	}
	found := r.leasedEnv()
	if len(found) == 0 {
		return
	}
	var each []string
	for _, name := range slices.Sorted(maps.Keys(found)) {
		each = append(each, name+" ["+strings.Join(found[name], " ")+"]")
	}
	r.opts.Log.Warn("leased secrets reach environment variables: the running child keeps their old values when the secret rotates, until it is restarted; "+
		"read them from a file template, or set AION_RESTART_ON=env",
		"restart_on", r.opts.RestartOn, "leased_env", strings.Join(each, "; "))
}

// leasedEnv maps each secret with a leased part to the environment
// variables those parts reach in the last render. It renders again with
// the leased values altered: a variable that changes is one a rotation
// changes, whatever the templates do with the value on the way (pgURL,
// a merge in which a later KV part wins). When the altered values do not
// render (a template that decodes them), it names the environment
// templates that read the secret instead.
func (r *Refresher) leasedEnv() map[string][]string {
	found := map[string][]string{}
	if r.out == nil {
		return found
	}
	for _, name := range r.leasedSecrets() {
		parts := slices.Clone(r.parts)
		for i, p := range parts {
			if r.opts.Secrets[i].Name == name && p.lease != nil {
				parts[i].data, _ = altered(p.data).(map[string]any)
			}
		}
		out, err := r.set.Render(merge(r.opts.Label, r.opts.Secrets, parts))
		if err != nil {
			found[name] = r.envTemplates(name)
			continue
		}
		if vars := Classify(nil, nil, r.out, out, nil).EnvChanged; len(vars) > 0 {
			found[name] = vars
		}
	}
	return found
}

// leasedSecrets names the secrets with a leased part, in order.
func (r *Refresher) leasedSecrets() []string {
	var names []string
	for i, p := range r.parts {
		if name := r.opts.Secrets[i].Name; p.lease != nil && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// envTemplates names, as "variables of T", the active environment
// templates that read secret.
func (r *Refresher) envTemplates(secret string) []string {
	var names []string
	for _, t := range r.set.Templates() {
		if t.Active && t.Kind == render.KindEnv && slices.Contains(t.Secrets, secret) {
			names = append(names, "variables of "+t.Name)
		}
	}
	return names
}

// altered is v with every letter and digit of its strings moved to the
// next of its kind (a→b, Z→A, 9→0), and every digit of its numbers: each
// value differs, in the same shape (base64 stays base64, a host a host, a
// number a number), so the templates render it as they would a new one.
func altered(v any) any {
	switch v := v.(type) {
	case string:
		return shift(v, true)
	case json.Number:
		return json.Number(shift(string(v), false))
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = altered(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = altered(x)
		}
		return l
	}
	return v
}

func shift(s string, letters bool) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c == '9':
			return '0'
		case c == 'z' && letters:
			return 'a'
		case c == 'Z' && letters:
			return 'A'
		case '0' <= c && c < '9', letters && ('a' <= c && c < 'z' || 'A' <= c && c < 'Z'):
			return c + 1
		}
		return c
	}, s)
}
