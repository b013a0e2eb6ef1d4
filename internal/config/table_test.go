package config

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeTable is README's "Settings and their defaults" table: variable
// names (the first cell) -> the default cell.
func readmeTable(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Settings and their defaults")
	if !ok {
		t.Fatal("README has no settings table")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := regexp.MustCompile("`(AION_[A-Z0-9_]+)`")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		for _, m := range names.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = cells[2]
		}
	}
	return rows
}

func TestREADMESettingsAgreeWithTheTable(t *testing.T) {
	rows := readmeTable(t)
	known := map[string]bool{}
	each(&Config{}, func(f field) {
		known[f.env] = true
		cell, ok := rows[f.env]
		if !ok {
			t.Errorf("README's settings table lacks %s", f.env)
			return
		}
		if def := f.tag.Get("default"); def != "" && !strings.Contains(cell, "`"+def+"`") {
			t.Errorf("README gives %s the default %q; the table says %q", f.env, strings.TrimSpace(cell), def)
		}
		if fb := f.tag.Get("fallback"); fb != "" && !strings.Contains(cell, "`"+fb+"`") {
			t.Errorf("README does not name %s's fallback %s: %q", f.env, fb, strings.TrimSpace(cell))
		}
	})
	for name := range rows {
		if !known[name] {
			t.Errorf("README's settings table names %s, which is not a setting", name)
		}
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var b bytes.Buffer
	if err := Help(&b); err != nil {
		t.Fatal(err)
	}
	help := b.String()
	each(&Config{}, func(f field) {
		line := ""
		for _, l := range strings.Split(help, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), f.env+" ") {
				line = l
			}
		}
		switch {
		case line == "":
			t.Errorf("--help lacks %s", f.env)
		case f.tag.Get("flag") == "-" && !strings.Contains(line, "(no flag)"):
			t.Errorf("--help offers a flag for the credential %s: %s", f.env, line)
		case f.tag.Get("flag") != "-" && !strings.Contains(line, "--"+flagName(f.env)+" "):
			t.Errorf("--help lacks the flag of %s: %s", f.env, line)
		}
	})
	if !strings.Contains(help, "[default 60s]") || !strings.Contains(help, "(falls back to VAULT_ADDR)") {
		t.Errorf("--help lacks defaults or fallbacks:\n%s", help)
	}
}

func TestFlagsOverrideTheEnvironment(t *testing.T) {
	c, rest, err := load(t, with("AION_POLL_INTERVAL", "5s", "AION_RESTART_ON", "env"), true,
		"--poll-interval=2s", "--secret", "gateway-api-keys=kv/keys", "--", "node", "server.js")
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval.V != 2*time.Second || c.PollInterval.From() != "--poll-interval" || c.RestartOn.V != "env" {
		t.Errorf("poll %s from %s, restart on %s", c.PollInterval.V, c.PollInterval.From(), c.RestartOn.V)
	}
	if len(c.Secrets) != 1 || c.Secrets[0].Name != "gateway_api_keys" || strings.Join(rest, " ") != "node server.js" {
		t.Errorf("secrets %v, rest %q", c.Secrets, rest)
	}
	// A bad flag value is named as the flag, with every other problem.
	_, _, err = load(t, with("AION_LOG_FORMAT", "xml"), true, "--stop-timeout=soon")
	if err == nil || !strings.Contains(err.Error(), `--stop-timeout is "soon"`) || !strings.Contains(err.Error(), `AION_LOG_FORMAT is "xml"`) {
		t.Errorf("bad flag and variable: %v", err)
	}
	// Credentials have no flag: argv is world-readable.
	if _, _, err := load(t, base(), true, "--vault-token=x"); err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Errorf("--vault-token: %v", err)
	}
}
