package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// Tool names, which are also the tokens' display names after the prefix.
const (
	ToolAion  = "aion-exec"
	ToolCT    = "consul-template"
	ToolAgent = "vault-agent"
)

// Tools in report order.
var Tools = []string{ToolAion, ToolCT, ToolAgent}

// launch is how one tool is started: its binary, arguments and environment;
// configuration files are written into dir first.
type launch struct {
	bin  string
	args []string
	env  []string
}

// The child gets the secret's username in S001_F1 and its password in
// S001_F2: benchchild hashes its S###_F# variables, so the report knows
// which user every child started with.

// aionLaunch: AION_DB_SECRET_PATH=database/creds/app and a db.env.tmpl of
// its own, which overrides the built-in one (that one needs a host). With
// AION_RESTART_ON=env a new user restarts the child with the new
// environment, as the two peers do; aion-exec's default (host) would send
// SIGHUP for a new password instead, with the same requests to Vault.
func aionLaunch(bin, child, addr, token, credsPath, dir, events string) (launch, error) {
	tdir := filepath.Join(dir, "templates")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return launch{}, err
	}
	if err := os.WriteFile(filepath.Join(tdir, "db.env.tmpl"), []byte("S001_F1={{ .db.username }}\nS001_F2={{ .db.password }}\n"), 0o600); err != nil {
		return launch{}, err
	}
	env := append(kit.ToolEnv(dir, events),
		"AION_VAULT_ADDR="+addr,
		"AION_VAULT_TOKEN="+token,
		"AION_DB_SECRET_PATH="+credsPath,
		"AION_TEMPLATES_DIR="+tdir,
		"AION_RENDER_DIR="+filepath.Join(dir, "render"),
		"AION_RESTART_ON=env",
		"AION_LOG_LEVEL=info",
	)
	return launch{bin: bin, args: []string{"--", child}, env: env}, nil
}

// ctLaunch is consul-template's exec mode with its defaults for Vault
// (renew_token true, lease renewal by Vault's LifetimeWatcher). It cannot
// put a value into the child's environment, so it renders a file of
// exports that the exec'd shell sources before exec'ing the child; a
// change restarts the child (no reload_signal).
func ctLaunch(bin, child, addr, token, credsPath, dir string, events string) (launch, error) {
	envFile := filepath.Join(dir, "secrets.env")
	tmpl := fmt.Sprintf("{{ with secret %q }}export S001_F1='{{ .Data.username }}'\nexport S001_F2='{{ .Data.password }}'\n{{ end }}", credsPath)
	cfg := fmt.Sprintf(`log_level = "info"
vault {
  address = %q
  token = %q
}
template {
  contents = %q
  destination = %q
  perms = 0600
  error_on_missing_key = true
}
exec {
  command = ["/bin/sh", "-c", %q]
  kill_signal = "SIGTERM"
  kill_timeout = "5s"
}
`, addr, token, tmpl, envFile, fmt.Sprintf(". '%s' && exec '%s'", envFile, child))
	path := filepath.Join(dir, "ct.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return launch{}, err
	}
	return launch{bin: bin, args: []string{"-config=" + path}, env: kit.ToolEnv(dir, events)}, nil
}

// agentLaunch is Vault Agent's process supervisor mode: token_file
// auto-auth, one env_template per variable, exec restarting the child on a
// change.
func agentLaunch(bin, child, addr, token, credsPath, dir, events string) (launch, error) {
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return launch{}, err
	}
	field := func(f string) string {
		return fmt.Sprintf("{{ with secret %q }}{{ .Data.%s }}{{ end }}", credsPath, f)
	}
	cfg := fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
env_template "S001_F1" {
  contents = %q
  error_on_missing_key = true
}
env_template "S001_F2" {
  contents = %q
  error_on_missing_key = true
}
exec {
  command = [%q]
  restart_on_secret_changes = "always"
  restart_stop_signal = "SIGTERM"
}
`, addr, tokenFile, field("username"), field("password"), child)
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return launch{}, err
	}
	return launch{bin: bin, args: []string{"agent", "-config=" + path, "-log-level=info"}, env: kit.ToolEnv(dir, events)}, nil
}
