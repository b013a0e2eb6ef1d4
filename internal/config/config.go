// Package config turns the platform's environment contract (AION_* and the
// VAULT_* fallbacks) into one validated Config. It reads nothing but the
// lookup it is given, talks to no server, and never puts a credential into an
// error or a warning.
package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// Secret is one AION_<NAME>_SECRET_PATH.
type Secret struct {
	Name string // lower-cased <NAME>: "db", "gateway_api_keys"
	Var  string // the variable it came from, for messages
	Path string // with ${AION_ENV} expanded
}

// Restart policies of AION_RESTART_ON.
const (
	RestartHost  = "host"
	RestartEnv   = "env"
	RestartNever = "never"
)

// Config is the validated configuration.
type Config struct {
	VaultAddr    string
	KVMount      string
	AuthMethod   string // "token" or "approle"
	Token        string
	TokenFile    string
	RoleID       string
	SecretID     string
	SecretIDFile string
	AppRoleMount string
	Namespace    string
	CACert       string
	CAPath       string
	Env          string
	Secrets      []Secret

	StartupTimeout   time.Duration
	BootstrapTimeout time.Duration

	TemplatesDir string
	RenderDir    string
	FileMode     os.FileMode

	PollInterval      time.Duration
	RestartOn         string
	HostFields        []string
	ReloadSignal      syscall.Signal // 0: none
	StopSignal        syscall.Signal
	StopTimeout       time.Duration
	SignalGroup       bool
	PassVaultCreds    bool
	LogFormat         string
	LogLevel          string
	CredentialEnvVars []string // variables stripped from the child's environment
}

// raw is what envconfig fills: strings only, so that validation can report
// every bad value at once instead of stopping at the first.
type raw struct {
	VaultAddr        string `env:"AION_VAULT_ADDR, default=$VAULT_ADDR"`
	KVMount          string `env:"AION_VAULT_KV_MOUNT, default=secret"`
	AuthMethod       string `env:"AION_VAULT_AUTH_METHOD"`
	Token            string `env:"AION_VAULT_TOKEN, default=$VAULT_TOKEN"`
	TokenFile        string `env:"AION_VAULT_TOKEN_FILE"`
	RoleID           string `env:"AION_VAULT_APPROLE_ROLE_ID"`
	SecretID         string `env:"AION_VAULT_APPROLE_SECRET_ID"`
	SecretIDFile     string `env:"AION_VAULT_APPROLE_SECRET_ID_FILE"`
	AppRoleMount     string `env:"AION_VAULT_APPROLE_MOUNT, default=approle"`
	Namespace        string `env:"AION_VAULT_NAMESPACE, default=$VAULT_NAMESPACE"`
	CACert           string `env:"AION_VAULT_CACERT, default=$VAULT_CACERT"`
	CAPath           string `env:"AION_VAULT_CAPATH, default=$VAULT_CAPATH"`
	Env              string `env:"AION_ENV"`
	StartupTimeout   string `env:"AION_STARTUP_TIMEOUT, default=30s"`
	BootstrapTimeout string `env:"AION_VAULT_BOOTSTRAP_TIMEOUT, default=180"`
	TemplatesDir     string `env:"AION_TEMPLATES_DIR"`
	RenderDir        string `env:"AION_RENDER_DIR"`
	FileMode         string `env:"AION_FILE_MODE, default=0600"`
	PollInterval     string `env:"AION_POLL_INTERVAL, default=60s"`
	RestartOn        string `env:"AION_RESTART_ON, default=host"`
	HostFields       string `env:"AION_HOST_FIELDS, default=host,hostname,port,database,dbname,endpoint,address,addr,url,uri"`
	ReloadSignal     string `env:"AION_RELOAD_SIGNAL, default=SIGHUP"`
	StopSignal       string `env:"AION_STOP_SIGNAL, default=SIGTERM"`
	StopTimeout      string `env:"AION_STOP_TIMEOUT, default=10s"`
	SignalGroup      string `env:"AION_SIGNAL_GROUP, default=false"`
	PassVaultCreds   string `env:"AION_PASS_VAULT_CREDENTIALS, default=false"`
	LogFormat        string `env:"AION_LOG_FORMAT, default=text"`
	LogLevel         string `env:"AION_LOG_LEVEL, default=info"`
	XDGRuntimeDir    string `env:"XDG_RUNTIME_DIR"`
}

// ConfigError lists every problem found in one pass.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

var (
	secretVarRE = regexp.MustCompile(`^AION_([A-Z0-9_]+)_SECRET_PATH$`)
	mountRE     = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
)

// Load reads the configuration from env (NAME -> value). An empty value counts
// as unset, so that compose files may write `AION_X: ${AION_X:-}`. It returns
// warnings (for example likely typos) alongside the config; the error, when
// not nil, is a *ConfigError wrapped with exit code 64. auth says whether
// Vault credentials are required: `dev bootstrap` creates them.
func Load(env map[string]string, auth bool) (*Config, []string, error) {
	set := make(map[string]string, len(env))
	for k, v := range env {
		if v != "" {
			set[k] = v
		}
	}
	var r raw
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target:   &r,
		Lookuper: envconfig.MapLookuper(set),
	}); err != nil {
		return nil, nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read environment: %w", err))
	}

	var p problems
	c := &Config{
		VaultAddr:    strings.TrimRight(r.VaultAddr, "/"),
		KVMount:      strings.Trim(r.KVMount, "/"),
		Token:        strings.TrimSpace(r.Token),
		TokenFile:    r.TokenFile,
		RoleID:       strings.TrimSpace(r.RoleID),
		SecretID:     strings.TrimSpace(r.SecretID),
		SecretIDFile: r.SecretIDFile,
		AppRoleMount: strings.Trim(r.AppRoleMount, "/"),
		Namespace:    strings.Trim(r.Namespace, "/"),
		CACert:       r.CACert,
		CAPath:       r.CAPath,
		Env:          r.Env,
		TemplatesDir: r.TemplatesDir,
		RenderDir:    r.RenderDir,
		LogFormat:    strings.ToLower(r.LogFormat),
		LogLevel:     strings.ToLower(r.LogLevel),
	}

	switch {
	case c.VaultAddr == "":
		p.add("AION_VAULT_ADDR", "is not set (nor VAULT_ADDR); set the Vault API URL, e.g. http://127.0.0.1:8200")
	case !strings.HasPrefix(c.VaultAddr, "http://") && !strings.HasPrefix(c.VaultAddr, "https://"):
		p.add("AION_VAULT_ADDR", "must start with http:// or https://")
	}
	if !mountRE.MatchString(c.KVMount) {
		p.add("AION_VAULT_KV_MOUNT", "must be a mount path such as secret or kv")
	}

	c.AuthMethod = strings.ToLower(r.AuthMethod)
	if c.AuthMethod == "" {
		c.AuthMethod = "token"
		if c.RoleID != "" {
			c.AuthMethod = "approle"
		}
	}
	switch {
	case !auth:
	case c.AuthMethod == "token":
		if c.Token == "" && c.TokenFile == "" {
			p.add("AION_VAULT_TOKEN", "is not set (nor VAULT_TOKEN, nor AION_VAULT_TOKEN_FILE) and token auth needs one")
		}
		if c.Token != "" && c.TokenFile != "" {
			p.add("AION_VAULT_TOKEN_FILE", "conflicts with AION_VAULT_TOKEN; set one of them")
		}
	case c.AuthMethod == "approle":
		if c.RoleID == "" {
			p.add("AION_VAULT_APPROLE_ROLE_ID", "is not set and approle auth needs it")
		}
		if c.SecretID == "" && c.SecretIDFile == "" {
			p.add("AION_VAULT_APPROLE_SECRET_ID", "is not set (nor AION_VAULT_APPROLE_SECRET_ID_FILE) and approle auth needs it")
		}
		if c.SecretID != "" && c.SecretIDFile != "" {
			p.add("AION_VAULT_APPROLE_SECRET_ID_FILE", "conflicts with AION_VAULT_APPROLE_SECRET_ID; set one of them")
		}
		if !mountRE.MatchString(c.AppRoleMount) {
			p.add("AION_VAULT_APPROLE_MOUNT", "must be an auth mount path such as approle")
		}
	}
	if c.AuthMethod != "token" && c.AuthMethod != "approle" {
		p.add("AION_VAULT_AUTH_METHOD", fmt.Sprintf("is %q; want token or approle", r.AuthMethod))
	}
	for _, f := range []struct{ name, path string }{
		{"AION_VAULT_TOKEN_FILE", c.TokenFile},
		{"AION_VAULT_APPROLE_SECRET_ID_FILE", c.SecretIDFile},
		{"AION_VAULT_CACERT", c.CACert},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(f.name, fmt.Sprintf("names %s, which cannot be read: %v", f.path, errors.Unwrap(err)))
		}
	}

	c.Secrets = secrets(set, c.Env, &p)

	c.StartupTimeout = p.duration("AION_STARTUP_TIMEOUT", r.StartupTimeout, false)
	c.BootstrapTimeout = p.duration("AION_VAULT_BOOTSTRAP_TIMEOUT", r.BootstrapTimeout, false)
	c.PollInterval = p.duration("AION_POLL_INTERVAL", r.PollInterval, false)
	c.StopTimeout = p.duration("AION_STOP_TIMEOUT", r.StopTimeout, true)
	if c.PollInterval > 0 && c.PollInterval < 100*time.Millisecond {
		p.add("AION_POLL_INTERVAL", "must be at least 100ms; every poll reads every secret from Vault")
	}

	if mode, err := strconv.ParseUint(r.FileMode, 8, 32); err != nil || mode&^0o777 != 0 {
		p.add("AION_FILE_MODE", fmt.Sprintf("is %q; want an octal permission such as 0600", r.FileMode))
	} else if mode&0o007 != 0 {
		p.add("AION_FILE_MODE", fmt.Sprintf("is %q; rendered files hold secrets and must not be world-accessible", r.FileMode))
	} else {
		c.FileMode = os.FileMode(mode)
	}

	if c.RenderDir == "" {
		c.RenderDir = defaultRenderDir(r.XDGRuntimeDir)
	}
	if abs, err := filepath.Abs(c.RenderDir); err == nil {
		c.RenderDir = abs
	}

	c.RestartOn = strings.ToLower(r.RestartOn)
	if !slices.Contains([]string{RestartHost, RestartEnv, RestartNever}, c.RestartOn) {
		p.add("AION_RESTART_ON", fmt.Sprintf("is %q; want host, env or never", r.RestartOn))
	}
	for _, f := range strings.Split(r.HostFields, ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.HostFields = append(c.HostFields, f)
		}
	}

	if strings.EqualFold(r.ReloadSignal, "none") {
		c.ReloadSignal = 0
	} else if sig, ok := ParseSignal(r.ReloadSignal); ok {
		c.ReloadSignal = sig
	} else {
		p.add("AION_RELOAD_SIGNAL", fmt.Sprintf("is %q; want a signal name such as SIGHUP, or none", r.ReloadSignal))
	}
	if sig, ok := ParseSignal(r.StopSignal); ok {
		c.StopSignal = sig
	} else {
		p.add("AION_STOP_SIGNAL", fmt.Sprintf("is %q; want a signal name such as SIGTERM", r.StopSignal))
	}
	c.SignalGroup = p.boolean("AION_SIGNAL_GROUP", r.SignalGroup)
	c.PassVaultCreds = p.boolean("AION_PASS_VAULT_CREDENTIALS", r.PassVaultCreds)

	if c.LogFormat != "text" && c.LogFormat != "json" {
		p.add("AION_LOG_FORMAT", fmt.Sprintf("is %q; want text or json", r.LogFormat))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		p.add("AION_LOG_LEVEL", fmt.Sprintf("is %q; want debug, info, warn or error", r.LogLevel))
	}

	c.CredentialEnvVars = []string{"AION_VAULT_TOKEN", "VAULT_TOKEN", "AION_VAULT_APPROLE_SECRET_ID",
		"AION_VAULT_TOKEN_FILE", "AION_VAULT_APPROLE_SECRET_ID_FILE"}

	if len(p) > 0 {
		return nil, nil, sysexits.Wrap(sysexits.Usage, &ConfigError{Problems: p})
	}
	return c, typos(set), nil
}

// defaultRenderDir is a per-user tmpfs when the session has one (a laptop),
// else /run/aion-exec (a container, where /run is a tmpfs the image prepares).
func defaultRenderDir(xdgRuntime string) string {
	if xdgRuntime != "" {
		return filepath.Join(xdgRuntime, "aion-exec")
	}
	return "/run/aion-exec"
}

func secrets(env map[string]string, label string, p *problems) []Secret {
	var out []Secret
	for k, v := range env {
		m := secretVarRE.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		s := Secret{Name: strings.ToLower(m[1]), Var: k, Path: strings.TrimSpace(v)}
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

type problems []string

func (p *problems) add(name, msg string) { *p = append(*p, name+" "+msg) }

// duration accepts Go durations ("90s", "5m") and plain seconds ("90").
func (p *problems) duration(name, v string, zeroOK bool) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			p.add(name, fmt.Sprintf("is %q; want a duration such as 30s or a number of seconds", v))
			return 0
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || (d == 0 && !zeroOK) {
		p.add(name, fmt.Sprintf("is %q; want a positive duration", v))
		return 0
	}
	return d
}

func (p *problems) boolean(name, v string) bool {
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.add(name, fmt.Sprintf("is %q; want true or false", v))
	}
	return b
}

// ParseSignal accepts "SIGHUP", "HUP", "hup" or a number.
func ParseSignal(s string) (syscall.Signal, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), true
	}
	sig, ok := signals[strings.TrimPrefix(s, "SIG")]
	return sig, ok
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "KILL": syscall.SIGKILL,
	"ALRM": syscall.SIGALRM, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP,
	"PWR": syscall.SIGPWR,
}
