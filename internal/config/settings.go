package config

import (
	"fmt"
	"sort"
	"strings"
)

// Setting documents one variable; the command line builds its flags and
// --help from this table, so a setting cannot exist without its flag.
type Setting struct {
	Env     string
	Default string
	Usage   string
	Secret  bool // a credential: its flag is refused, argv is world-readable
}

// Flag is the command-line spelling of the setting: AION_POLL_INTERVAL -> poll-interval.
func (s Setting) Flag() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.Env, "AION_")), "_", "-")
}

// Settings lists every AION_* variable aion-exec reads, in --help order.
var Settings = []Setting{
	{Env: "AION_VAULT_ADDR", Usage: "Vault API URL (falls back to VAULT_ADDR)"},
	{Env: "AION_VAULT_KV_MOUNT", Default: "secret", Usage: "KV mount for relative secret paths"},
	{Env: "AION_VAULT_AUTH_METHOD", Usage: "token or approle (default: approle when a role ID is set, else token)"},
	{Env: "AION_VAULT_TOKEN", Usage: "token for token auth (falls back to VAULT_TOKEN); environment only", Secret: true},
	{Env: "AION_VAULT_TOKEN_FILE", Usage: "file holding the token; re-read when it changes"},
	{Env: "AION_VAULT_APPROLE_ROLE_ID", Usage: "AppRole role ID"},
	{Env: "AION_VAULT_APPROLE_SECRET_ID", Usage: "AppRole secret ID, plain or a response-wrapping token; environment only", Secret: true},
	{Env: "AION_VAULT_APPROLE_SECRET_ID_FILE", Usage: "file holding the AppRole secret ID (plain or wrapped)"},
	{Env: "AION_VAULT_APPROLE_MOUNT", Default: "approle", Usage: "auth mount of the AppRole method"},
	{Env: "AION_VAULT_NAMESPACE", Usage: "Vault Enterprise / HCP namespace (falls back to VAULT_NAMESPACE)"},
	{Env: "AION_VAULT_CACERT", Usage: "PEM CA bundle for Vault's TLS (falls back to VAULT_CACERT)"},
	{Env: "AION_VAULT_CAPATH", Usage: "directory of PEM CA certificates (falls back to VAULT_CAPATH)"},
	{Env: "AION_ENV", Usage: "deployment label; ${AION_ENV} in a secret path expands to it"},
	{Env: "AION_STARTUP_TIMEOUT", Default: "30s", Usage: "how long to wait for Vault at start before exiting 69"},
	{Env: "AION_VAULT_BOOTSTRAP_TIMEOUT", Default: "180", Usage: "seconds dev bootstrap waits for Vault"},
	{Env: "AION_TEMPLATES_DIR", Usage: "directory of *.tmpl templates; adds to and overrides the built-ins"},
	{Env: "AION_RENDER_DIR", Default: "$XDG_RUNTIME_DIR/aion-exec or /run/aion-exec", Usage: "directory for rendered files (created 0700)"},
	{Env: "AION_FILE_MODE", Default: "0600", Usage: "mode of rendered files (never world-accessible)"},
	{Env: "AION_POLL_INTERVAL", Default: "60s", Usage: "how often secrets are re-read (less up to 10% jitter)"},
	{Env: "AION_RESTART_ON", Default: "host", Usage: "host, env or never: what restarts the child instead of a reload signal"},
	{Env: "AION_HOST_FIELDS", Default: "host,hostname,port,database,dbname,endpoint,address,addr,url,uri", Usage: "secret fields whose change restarts the child (RESTART_ON=host)"},
	{Env: "AION_RELOAD_SIGNAL", Default: "SIGHUP", Usage: "signal sent on a change that needs no restart; none sends nothing"},
	{Env: "AION_STOP_SIGNAL", Default: "SIGTERM", Usage: "signal that asks the child to stop before a restart"},
	{Env: "AION_STOP_TIMEOUT", Default: "10s", Usage: "wait after the stop signal before SIGKILL"},
	{Env: "AION_SIGNAL_GROUP", Default: "false", Usage: "signal the child's whole process group (like tini -g)"},
	{Env: "AION_PASS_VAULT_CREDENTIALS", Default: "false", Usage: "hand aion-exec's own Vault credentials to the child"},
	{Env: "AION_LOG_FORMAT", Default: "text", Usage: "text or json"},
	{Env: "AION_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error"},
}

// Help writes the settings table for --help.
func Help() string {
	var b strings.Builder
	for _, s := range Settings {
		flag := "--" + s.Flag()
		if s.Secret {
			flag = "(no flag)"
		}
		fmt.Fprintf(&b, "  %-34s %-32s %s", s.Env, flag, s.Usage)
		if s.Default != "" {
			fmt.Fprintf(&b, " [default %s]", s.Default)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "  %-34s %-32s %s\n", "AION_<NAME>_SECRET_PATH", "--secret NAME=PATH", "a secret to read; .<name> in templates (repeatable flag)")
	return b.String()
}

// typos warns about AION_* variables that are not ours but are one or two
// edits away from one that is: AION_VAULT_ADRR, AION_DB_SECRETS_PATH.
func typos(env map[string]string) []string {
	known := make(map[string]bool, len(Settings))
	for _, s := range Settings {
		known[s.Env] = true
	}
	var out []string
	for k := range env {
		if !strings.HasPrefix(k, "AION_") || known[k] || secretVarRE.MatchString(k) {
			continue
		}
		best, bestD := "", 3
		for _, s := range Settings {
			if d := distance(k, s.Env); d < bestD {
				best, bestD = s.Env, d
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
