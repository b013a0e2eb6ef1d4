package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// load runs Load on exactly env (nothing of the test process's AION_*,
// VAULT_* or XDG_RUNTIME_DIR) and args. envconfig reads the process
// environment, so these tests use t.Setenv and cannot run in parallel.
func load(t *testing.T, env map[string]string, needAuth bool, args ...string) (*Config, []string, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AION_") || strings.HasPrefix(k, "VAULT_") || k == "XDG_RUNTIME_DIR" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, rest, err := Load("test", args, needAuth)
	if c != nil && len(rest) == 0 {
		return c, c.Warnings, err
	}
	return c, rest, err
}

func base() map[string]string {
	return map[string]string{"AION_VAULT_ADDR": "http://vault:8200", "AION_VAULT_TOKEN": "t"}
}

func with(kv ...string) map[string]string {
	env := base()
	for i := 0; i < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

func TestLoadDefaults(t *testing.T) {
	c, warn, err := load(t, with("AION_DB_SECRET_PATH", "aionos/dev/db-main", "XDG_RUNTIME_DIR", "/run/user/1000"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings: %v", warn)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"KVMount", c.KVMount.V, "secret"},
		{"AuthMethod", c.AuthMethod.V, "token"},
		{"PollInterval", c.PollInterval.V, 60 * time.Second},
		{"StopTimeout", c.StopTimeout.V, 10 * time.Second},
		{"StartupTimeout", c.StartupTimeout.V, 30 * time.Second},
		{"BootstrapTimeout", c.BootstrapTimeout.V, 180 * time.Second},
		{"RestartOn", c.RestartOn.V, "host"},
		{"ReloadSignal", c.ReloadSignal.V, syscall.SIGHUP},
		{"StopSignal", c.StopSignal.V, syscall.SIGTERM},
		{"FileMode", c.FileMode.V, os.FileMode(0o600)},
		{"RenderDir", c.RenderDir.V, "/run/user/1000/aion-exec"},
		{"HostFields", strings.Join(c.HostFields.V, ","), "host,hostname,port,database,dbname,endpoint,address,addr,url,uri"},
		{"Secrets", len(c.Secrets), 1},
		{"Secret name", c.Secrets[0].Name, "db"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadFallbacksAndInference(t *testing.T) {
	c, _, err := load(t, map[string]string{"VAULT_ADDR": "https://v:8200/", "VAULT_TOKEN": "tok", "VAULT_NAMESPACE": "admin/team"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.VaultAddr.V, ",") != "https://v:8200" || c.Token.V != "tok" || c.Namespace.V != "admin/team" {
		t.Errorf("VAULT_* fallbacks: addr %q token set %t ns %q", c.VaultAddr.V, c.Token.V != "", c.Namespace.V)
	}
	// AION_* wins over VAULT_*; an empty AION_* counts as unset.
	c, _, err = load(t, map[string]string{"AION_VAULT_ADDR": "http://a:1", "VAULT_ADDR": "http://b:2", "AION_VAULT_TOKEN": "", "VAULT_TOKEN": "x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.VaultAddr.V, ",") != "http://a:1" || c.Token.V != "x" {
		t.Errorf("precedence: addr %q, token from VAULT_TOKEN %t", c.VaultAddr.V, c.Token.V == "x")
	}
	// A role ID selects approle when no method is named.
	c, _, err = load(t, map[string]string{"AION_VAULT_ADDR": "http://a:1", "AION_VAULT_APPROLE_ROLE_ID": "r", "AION_VAULT_APPROLE_SECRET_ID": "s"}, true)
	if err != nil || c.AuthMethod.V != "approle" {
		t.Fatalf("inferred method: %v %v", c, err)
	}
}

// The TLS settings fall back to the Vault CLI's variables of the same
// names: VAULT_* counts when AION_* is unset or empty, AION_* wins when
// both are set, even AION_VAULT_SKIP_VERIFY=false over VAULT_SKIP_VERIFY=true.
func TestTLSFallbacks(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dirOf := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pairCert, pairKey := file("pair.pem"), file("pair-key.pem") // the other half of a client pair
	tests := []struct {
		aion, aionV, vault, vaultV string
		also                       []string // settings the setting needs beside it
		got                        func(*Config) (string, string)
	}{
		{"AION_VAULT_CACERT", file("aion-ca.pem"), "VAULT_CACERT", file("vault-ca.pem"), nil,
			func(c *Config) (string, string) { return c.CACert.V, c.CACert.From() }},
		{"AION_VAULT_CAPATH", dirOf("aion-cas"), "VAULT_CAPATH", dirOf("vault-cas"), nil,
			func(c *Config) (string, string) { return c.CAPath.V, c.CAPath.From() }},
		{"AION_VAULT_CLIENT_CERT", file("aion-client.pem"), "VAULT_CLIENT_CERT", file("vault-client.pem"), []string{"AION_VAULT_CLIENT_KEY", pairKey},
			func(c *Config) (string, string) { return c.ClientCert.V, c.ClientCert.From() }},
		{"AION_VAULT_CLIENT_KEY", file("aion-client-key.pem"), "VAULT_CLIENT_KEY", file("vault-client-key.pem"), []string{"AION_VAULT_CLIENT_CERT", pairCert},
			func(c *Config) (string, string) { return c.ClientKey.V, c.ClientKey.From() }},
		{"AION_VAULT_TLS_SERVER_NAME", "aion.vault.internal", "VAULT_TLS_SERVER_NAME", "vault.vault.internal", nil,
			func(c *Config) (string, string) { return c.ServerName.V, c.ServerName.From() }},
		{"AION_VAULT_SKIP_VERIFY", "false", "VAULT_SKIP_VERIFY", "true", nil,
			func(c *Config) (string, string) { return strconv.FormatBool(c.SkipVerify.V), c.SkipVerify.From() }},
	}
	for _, tt := range tests {
		for _, sc := range []struct {
			name, aionV, want, from string
		}{
			{"VAULT_* when AION_* is unset", "", tt.vaultV, tt.vault},
			{"AION_* over VAULT_*", tt.aionV, tt.aionV, tt.aion},
		} {
			t.Run(tt.aion+"/"+sc.name, func(t *testing.T) {
				env := with(append([]string{tt.vault, tt.vaultV}, tt.also...)...)
				if sc.aionV != "" {
					env[tt.aion] = sc.aionV
				}
				c, _, err := load(t, env, true)
				if err != nil {
					t.Fatal(err)
				}
				if got, from := tt.got(c); got != sc.want || from != sc.from {
					t.Errorf("got %q from %s, want %q from %s", got, from, sc.want, sc.from)
				}
			})
		}
	}
}

func TestSeveralAddresses(t *testing.T) {
	c, _, err := load(t, with("AION_VAULT_ADDR", "https://n1:8200/, https://n2:8200,,https://n3:8200"), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.VaultAddr.V, " "); got != "https://n1:8200 https://n2:8200 https://n3:8200" {
		t.Errorf("addresses: %s", got)
	}
}

func TestLoadSecretPaths(t *testing.T) {
	c, _, err := load(t, with(
		"AION_ENV", "staging",
		"AION_DB_SECRET_PATH", "aionos/${AION_ENV}/db-main",
		"AION_GATEWAY_API_KEYS_SECRET_PATH", "/kv/aionos/gateway-api-keys/",
		"AION_CUSTOM_THING_SECRET_PATH", "secret/data/x",
		"AION_MINIO_SECRET_PATH", "", // empty: not configured
		"AION_PG_SECRET_PATH", "aionos/${AION_ENV}/db-main, database/creds/app",
		"AION_TLS_SECRET_PATH", "pki/issue/web?common_name=web.internal&ttl=24h",
	), true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Secrets {
		got = append(got, s.Name+"="+strings.Join(s.Paths, "+"))
	}
	want := "custom_thing=secret/data/x db=aionos/staging/db-main gateway_api_keys=kv/aionos/gateway-api-keys " +
		"pg=aionos/staging/db-main+database/creds/app tls=pki/issue/web?common_name=web.internal&ttl=24h"
	if strings.Join(got, " ") != want {
		t.Errorf("secrets = %v, want %s", got, want)
	}
}

func TestLoadBadInput(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no addr", map[string]string{"AION_VAULT_TOKEN": "t"}, "AION_VAULT_ADDR is not set (nor VAULT_ADDR)"},
		{"addr scheme", with("AION_VAULT_ADDR", "vault:8200"), `AION_VAULT_ADDR holds "vault:8200", which does not start with http:// or https://`},
		{"second addr scheme", with("AION_VAULT_ADDR", "https://a:8200, b:8200"), `AION_VAULT_ADDR holds "b:8200", which does not start`},
		{"kv mount", with("AION_VAULT_KV_MOUNT", "a b"), "AION_VAULT_KV_MOUNT must be a mount path"},
		{"no token", map[string]string{"AION_VAULT_ADDR": "http://v:1"}, "AION_VAULT_TOKEN is not set (nor VAULT_TOKEN, nor AION_VAULT_TOKEN_FILE)"},
		{"token and file", with("AION_VAULT_TOKEN_FILE", "/etc/hostname"), "AION_VAULT_TOKEN_FILE conflicts with AION_VAULT_TOKEN"},
		{"token file missing", map[string]string{"AION_VAULT_ADDR": "http://v:1", "AION_VAULT_TOKEN_FILE": tokenFile}, "AION_VAULT_TOKEN_FILE names " + tokenFile + ", which cannot be read"},
		{"method", with("AION_VAULT_AUTH_METHOD", "ldap"), `AION_VAULT_AUTH_METHOD is "ldap"; want token, approle, jwt, kubernetes or cert`},
		{"approle no role", with("AION_VAULT_AUTH_METHOD", "approle", "AION_VAULT_APPROLE_SECRET_ID", "s"), "AION_VAULT_APPROLE_ROLE_ID is not set"},
		{"approle no secret", with("AION_VAULT_APPROLE_ROLE_ID", "r"), "AION_VAULT_APPROLE_SECRET_ID is not set (nor AION_VAULT_APPROLE_SECRET_ID_FILE)"},
		{"approle both secrets", with("AION_VAULT_APPROLE_ROLE_ID", "r", "AION_VAULT_APPROLE_SECRET_ID", "s", "AION_VAULT_APPROLE_SECRET_ID_FILE", "/etc/hostname"), "AION_VAULT_APPROLE_SECRET_ID_FILE conflicts"},
		{"cacert", with("AION_VAULT_CACERT", "/nonexistent/ca.pem"), "AION_VAULT_CACERT names /nonexistent/ca.pem, which cannot be read"},
		{"capath", with("AION_VAULT_CAPATH", "/nonexistent/certs"), "AION_VAULT_CAPATH names /nonexistent/certs, which cannot be read"},
		{"client key alone", with("AION_VAULT_CLIENT_KEY", "/etc/hostname"), "AION_VAULT_CLIENT_KEY and AION_VAULT_CLIENT_CERT go together"},
		{"client cert alone", with("AION_VAULT_CLIENT_CERT", "/etc/hostname"), "AION_VAULT_CLIENT_CERT and AION_VAULT_CLIENT_KEY go together"},
		// A fallback that is at fault is named as the user wrote it.
		{"cacert fallback", with("VAULT_CACERT", "/nonexistent/ca.pem"), "VAULT_CACERT names /nonexistent/ca.pem, which cannot be read"},
		{"client cert fallback alone", with("VAULT_CLIENT_CERT", "/etc/hostname"), "VAULT_CLIENT_CERT and AION_VAULT_CLIENT_KEY go together"},
		{"client key fallback alone", with("VAULT_CLIENT_KEY", "/etc/hostname"), "VAULT_CLIENT_KEY and AION_VAULT_CLIENT_CERT go together"},
		{"skip verify fallback", with("VAULT_SKIP_VERIFY", "yes please"), `VAULT_SKIP_VERIFY is "yes please"; want true or false`},
		{"jwt no role", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_JWT_FILE", "/etc/hostname"), "AION_VAULT_AUTH_ROLE is not set and jwt auth needs the role"},
		{"jwt no file", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_AUTH_ROLE", "app"), "AION_VAULT_JWT_FILE is not set and jwt auth needs the file"},
		{"jwt file missing", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_AUTH_ROLE", "app", "AION_VAULT_JWT_FILE", "/nonexistent/jwt"), "AION_VAULT_JWT_FILE names /nonexistent/jwt, which cannot be read"},
		{"kubernetes outside a pod", with("AION_VAULT_AUTH_METHOD", "kubernetes", "AION_VAULT_AUTH_ROLE", "app"), "AION_VAULT_JWT_FILE names /var/run/secrets/kubernetes.io/serviceaccount/token, which cannot be read"},
		{"kubernetes no role", with("AION_VAULT_AUTH_METHOD", "kubernetes", "AION_VAULT_JWT_FILE", "/etc/hostname"), "AION_VAULT_AUTH_ROLE is not set and kubernetes auth needs the role"},
		{"cert no cert", with("AION_VAULT_AUTH_METHOD", "cert"), "AION_VAULT_CLIENT_CERT is not set and cert auth logs in with the client certificate"},
		{"auth mount", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_AUTH_ROLE", "a", "AION_VAULT_JWT_FILE", "/etc/hostname", "AION_VAULT_AUTH_MOUNT", "a b"), `AION_VAULT_AUTH_MOUNT is "a b"; want an auth mount path such as jwt`},
		{"approle mounts disagree", with("AION_VAULT_APPROLE_ROLE_ID", "r", "AION_VAULT_APPROLE_SECRET_ID", "s", "AION_VAULT_AUTH_MOUNT", "x", "AION_VAULT_APPROLE_MOUNT", "y"), "AION_VAULT_APPROLE_MOUNT conflicts with AION_VAULT_AUTH_MOUNT"},
		{"skip verify", with("AION_VAULT_SKIP_VERIFY", "yes please"), `AION_VAULT_SKIP_VERIFY is "yes please"; want true or false`},
		{"env unset", with("AION_DB_SECRET_PATH", "a/${AION_ENV}/b"), "AION_DB_SECRET_PATH uses ${AION_ENV} but AION_ENV is not set"},
		{"other var", with("AION_DB_SECRET_PATH", "a/$HOME/b"), "AION_DB_SECRET_PATH holds a $ that is not ${AION_ENV}"},
		{"dotdot", with("AION_DB_SECRET_PATH", "secret/../sys/x"), "AION_DB_SECRET_PATH must not contain .."},
		{"empty segment", with("AION_DB_SECRET_PATH", "secret//x"), "AION_DB_SECRET_PATH is not a secret path"},
		{"bad part", with("AION_DB_SECRET_PATH", "aionos/db-main,database/../x"), `AION_DB_SECRET_PATH (part "database/../x") must not contain ..`},
		{"bad parameters", with("AION_TLS_SECRET_PATH", "pki/issue/web?common_name=%zz"), "AION_TLS_SECRET_PATH has parameters after ? that do not parse"},
		{"poll", with("AION_POLL_INTERVAL", "often"), `AION_POLL_INTERVAL is "often"; want a duration`},
		{"poll short", with("AION_POLL_INTERVAL", "10ms"), "AION_POLL_INTERVAL must be at least 100ms"},
		{"poll zero", with("AION_POLL_INTERVAL", "0"), "AION_POLL_INTERVAL is 0; want a positive duration"},
		{"stop", with("AION_STOP_TIMEOUT", "-1s"), `AION_STOP_TIMEOUT is "-1s"; want a positive duration`},
		{"startup", with("AION_STARTUP_TIMEOUT", "x"), `AION_STARTUP_TIMEOUT is "x"`},
		{"bootstrap", with("AION_VAULT_BOOTSTRAP_TIMEOUT", "3 minutes"), `AION_VAULT_BOOTSTRAP_TIMEOUT is "3 minutes"`},
		{"mode", with("AION_FILE_MODE", "rw"), `AION_FILE_MODE is "rw"; want an octal permission`},
		{"mode world", with("AION_FILE_MODE", "0644"), `AION_FILE_MODE is "0644"; rendered files hold secrets and must not be world-accessible`},
		{"restart", with("AION_RESTART_ON", "always"), `AION_RESTART_ON is "always"; want host, env or never`},
		{"reload", with("AION_RELOAD_SIGNAL", "SIGFOO"), `AION_RELOAD_SIGNAL is "SIGFOO"`},
		{"stop signal", with("AION_STOP_SIGNAL", "none"), `AION_STOP_SIGNAL is "none"`},
		{"group", with("AION_SIGNAL_GROUP", "maybe"), `AION_SIGNAL_GROUP is "maybe"; want true or false`},
		{"pass", with("AION_PASS_VAULT_CREDENTIALS", "2"), `AION_PASS_VAULT_CREDENTIALS is "2"`},
		{"log format", with("AION_LOG_FORMAT", "xml"), `AION_LOG_FORMAT is "xml"; want text or json`},
		{"log level", with("AION_LOG_LEVEL", "loud"), `AION_LOG_LEVEL is "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.env, true)
			if err == nil {
				t.Fatalf("Load succeeded, want an error with %q", tt.want)
			}
			// One problem, one line, and the line starts with the variable
			// at fault (the first word of want).
			variable, _, _ := strings.Cut(tt.want, " ")
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], variable+" ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("error = %q\nwant one line starting with %s and containing %q", err, variable, tt.want)
			}
			if got := sysexits.Code(err); got != sysexits.Usage {
				t.Errorf("exit code %d, want 64", got)
			}
			if strings.Contains(err.Error(), "=t\n") || strings.Contains(err.Error(), `"t"`) {
				t.Errorf("error shows the token: %q", err)
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, _, err := load(t, map[string]string{"AION_VAULT_AUTH_METHOD": "x", "AION_POLL_INTERVAL": "y", "AION_LOG_FORMAT": "z"}, true)
	if err == nil {
		t.Fatal("no error")
	}
	var named []string
	for _, l := range strings.Split(err.Error(), "\n") {
		v, _, _ := strings.Cut(l, " ")
		named = append(named, v)
	}
	slices.Sort(named)
	if got, want := strings.Join(named, " "), "AION_LOG_FORMAT AION_POLL_INTERVAL AION_VAULT_ADDR AION_VAULT_AUTH_METHOD"; got != want {
		t.Errorf("want one line per problem, each starting with its variable (%s), got:\n%s", want, err)
	}
}

func TestTypoWarnings(t *testing.T) {
	_, warn, err := load(t, with("AION_VAULT_ADRR", "x", "AION_POLL_INTERVALL", "1s", "AION_DB_SECRETS_PATH", "a/b", "AION_UNRELATED_FEATURE", "on"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"AION_DB_SECRETS_PATH is not a setting of aion-exec; did you mean AION_<NAME>_SECRET_PATH?",
		"AION_POLL_INTERVALL is not a setting of aion-exec; did you mean AION_POLL_INTERVAL?",
		"AION_VAULT_ADRR is not a setting of aion-exec; did you mean AION_VAULT_ADDR?",
	}
	if strings.Join(warn, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warn, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGHUP": syscall.SIGHUP, "hup": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "15": syscall.SIGTERM} {
		if got, ok := ParseSignal(in); !ok || got != want {
			t.Errorf("ParseSignal(%q) = %v, %t; want %v", in, got, ok, want)
		}
	}
	if _, ok := ParseSignal("SIGNOPE"); ok {
		t.Error("ParseSignal accepted SIGNOPE")
	}
}

func TestLoadWithoutAuth(t *testing.T) {
	c, _, err := load(t, map[string]string{"AION_VAULT_ADDR": "http://127.0.0.1:8200"}, false)
	if err != nil {
		t.Fatalf("dev bootstrap needs no credentials: %v", err)
	}
	if c.BootstrapTimeout.V != 180*time.Second {
		t.Errorf("BootstrapTimeout = %s", c.BootstrapTimeout.V)
	}
}

// Where each method logs in: AION_VAULT_AUTH_MOUNT, for AppRole its alias
// AION_VAULT_APPROLE_MOUNT (default approle, from the table), else the
// method's name.
func TestAuthMount(t *testing.T) {
	approle := func(kv ...string) map[string]string {
		return with(append([]string{"AION_VAULT_APPROLE_ROLE_ID", "r", "AION_VAULT_APPROLE_SECRET_ID", "s"}, kv...)...)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"approle by default", approle(), "approle"},
		{"approle alias", approle("AION_VAULT_APPROLE_MOUNT", "/team-approle/"), "team-approle"},
		{"approle auth mount", approle("AION_VAULT_AUTH_MOUNT", "other"), "other"},
		{"approle both agree", approle("AION_VAULT_AUTH_MOUNT", "same", "AION_VAULT_APPROLE_MOUNT", "same"), "same"},
		{"jwt by default", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_AUTH_ROLE", "a", "AION_VAULT_JWT_FILE", "/etc/hostname"), "jwt"},
		{"jwt ignores the alias", with("AION_VAULT_AUTH_METHOD", "jwt", "AION_VAULT_AUTH_ROLE", "a", "AION_VAULT_JWT_FILE", "/etc/hostname", "AION_VAULT_APPROLE_MOUNT", "x"), "jwt"},
		{"token by default", base(), "token"},
	} {
		c, _, err := load(t, tc.env, true)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.AuthMount.V != tc.want {
			t.Errorf("%s: mount %q, want %q", tc.name, c.AuthMount.V, tc.want)
		}
	}
}
