package config

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/template"

	"github.com/kelseyhightower/envconfig"
)

// helpFormat is envconfig's usage template for our table: variable, flag,
// meaning, default and fallback, one setting a line.
const helpFormat = `{{range .}}  {{printf "%-36s" .Key}} {{printf "%-34s" (flagOf .Key (.Tags.Get "flag"))}} {{.Tags.Get "desc"}}` +
	`{{with .Tags.Get "fallback"}} (falls back to {{.}}){{end}}` +
	`{{with .Tags.Get "default"}} [default {{.}}]{{end}}{{with .Tags.Get "shown"}} [default {{.}}]{{end}}
{{end}}`

// helpTmpl is parsed for --help only, not in every start's package init
// (0.05 ms).
var helpTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("help").Funcs(template.FuncMap{
		"flagOf": func(env, flag string) string {
			if flag == "-" {
				return "(no flag)"
			}
			return "--" + flagName(env)
		},
	}).Parse(helpFormat))
})

// Help writes the settings table for --help, generated from Config's tags.
func Help(w io.Writer) error {
	if err := envconfig.Usaget("", &Config{}, w, helpTmpl()); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "  %-36s %-34s %s\n", "AION_<NAME>_SECRET_PATH", "--secret NAME=PATH", "a secret to read; .<name> in templates (repeatable flag)")
	return err
}

// Names lists every setting's variable, in table order.
func Names() []string {
	var out []string
	each(&Config{}, func(f field) { out = append(out, f.env) })
	return out
}

// typos warns about AION_* variables that are not ours but are one or two
// edits away from one that is: AION_VAULT_ADRR, AION_DB_SECRETS_PATH.
func typos(environ []string) []string {
	names := Names()
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AION_") || known[k] || secretVarRE().MatchString(k) {
			continue
		}
		best, bestD := "", 3
		for _, n := range names {
			if d := distance(k, n); d < bestD {
				best, bestD = n, d
			}
		}
		if best == "" && (strings.HasSuffix(k, "_SECRET_PATHS") || strings.HasSuffix(k, "_SECRETS_PATH") || strings.HasSuffix(k, "_SECRET")) {
			best = "AION_<NAME>_SECRET_PATH"
		}
		if best != "" {
			out = append(out, fmt.Sprintf("%s is not a setting of aion-exec; did you mean %s?", k, best))
		}
	}
	sort.Strings(out)
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
