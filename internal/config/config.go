// Package config turns the platform's environment contract (AION_* and the
// VAULT_* fallbacks) and the command line into one validated Config. Config
// is the settings table: each field is one setting with its variable, flag,
// default, fallback, parser (its type) and help text, once. Load reads the
// process environment with envconfig, lets flags override fields, and
// validates everything in one pass. Beyond the environment and the flags it
// only checks that the files a setting names exist; it talks to no server
// and never puts a credential into an error or a warning.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// Config is every setting. Tags: envconfig names the variable, default its
// default, fallback the variable read when it is unset, desc the help text;
// flag:"-" keeps a credential off the command line (argv is world-readable),
// shown documents a default computed at run time.
type Config struct {
	VaultAddr    Var[[]string] `envconfig:"AION_VAULT_ADDR" fallback:"VAULT_ADDR" desc:"Vault API URL; several, comma-separated, for a cluster: the first that answers is used"`
	KVMount      Var[string]   `envconfig:"AION_VAULT_KV_MOUNT" default:"secret" desc:"KV mount for relative secret paths"`
	AuthMethod   Var[string]   `envconfig:"AION_VAULT_AUTH_METHOD" shown:"approle when a role ID is set, else token" desc:"token, approle, jwt, kubernetes or cert"`
	AuthMount    Var[string]   `envconfig:"AION_VAULT_AUTH_MOUNT" shown:"the method's name" desc:"where the auth method is mounted (auth/<mount>)"`
	AuthRole     Var[string]   `envconfig:"AION_VAULT_AUTH_ROLE" desc:"role to log in as (jwt, kubernetes; cert: the certificate role, optional)"`
	JWTFile      Var[string]   `envconfig:"AION_VAULT_JWT_FILE" shown:"kubernetes: /var/run/secrets/kubernetes.io/serviceaccount/token" desc:"file holding the JWT for jwt and kubernetes logins; re-read at every login"`
	Token        Var[string]   `envconfig:"AION_VAULT_TOKEN" fallback:"VAULT_TOKEN" flag:"-" desc:"token for token auth; environment only"`
	TokenFile    Var[string]   `envconfig:"AION_VAULT_TOKEN_FILE" desc:"file holding the token; re-read when it changes"`
	RoleID       Var[string]   `envconfig:"AION_VAULT_APPROLE_ROLE_ID" desc:"AppRole role ID"`
	SecretID     Var[string]   `envconfig:"AION_VAULT_APPROLE_SECRET_ID" flag:"-" desc:"AppRole secret ID, plain or a response-wrapping token; environment only"`
	SecretIDFile Var[string]   `envconfig:"AION_VAULT_APPROLE_SECRET_ID_FILE" desc:"file holding the AppRole secret ID (plain or wrapped)"`
	AppRoleMount Var[string]   `envconfig:"AION_VAULT_APPROLE_MOUNT" default:"approle" desc:"auth mount of the AppRole method (an alias of AION_VAULT_AUTH_MOUNT)"`
	Namespace    Var[string]   `envconfig:"AION_VAULT_NAMESPACE" fallback:"VAULT_NAMESPACE" desc:"Vault Enterprise / HCP namespace"`
	CACert       Var[string]   `envconfig:"AION_VAULT_CACERT" fallback:"VAULT_CACERT" desc:"PEM CA bundle for Vault's TLS"`
	CAPath       Var[string]   `envconfig:"AION_VAULT_CAPATH" fallback:"VAULT_CAPATH" desc:"directory of PEM CA certificates"`
	ClientCert   Var[string]   `envconfig:"AION_VAULT_CLIENT_CERT" fallback:"VAULT_CLIENT_CERT" desc:"PEM client certificate for listeners that require one, and for cert login"`
	ClientKey    Var[string]   `envconfig:"AION_VAULT_CLIENT_KEY" fallback:"VAULT_CLIENT_KEY" desc:"PEM key of AION_VAULT_CLIENT_CERT"`
	ServerName   Var[string]   `envconfig:"AION_VAULT_TLS_SERVER_NAME" fallback:"VAULT_TLS_SERVER_NAME" desc:"name to verify Vault's certificate against, when not the address's host"`
	SkipVerify   Var[bool]     `envconfig:"AION_VAULT_SKIP_VERIFY" fallback:"VAULT_SKIP_VERIFY" default:"false" desc:"do not verify Vault's certificate (tests only; warned at every start)"`
	Env          Var[string]   `envconfig:"AION_ENV" desc:"deployment label; ${AION_ENV} in a secret path expands to it"`

	StartupTimeout   Var[time.Duration] `envconfig:"AION_STARTUP_TIMEOUT" default:"30s" desc:"how long to wait for Vault at start before exiting 69"`
	BootstrapTimeout Var[time.Duration] `envconfig:"AION_VAULT_BOOTSTRAP_TIMEOUT" default:"180" desc:"seconds dev bootstrap waits for Vault"`

	TemplatesDir Var[string]      `envconfig:"AION_TEMPLATES_DIR" desc:"directory of *.tmpl templates; adds to and overrides the built-ins"`
	RenderDir    Var[string]      `envconfig:"AION_RENDER_DIR" shown:"$XDG_RUNTIME_DIR/aion-exec, else /run/aion-exec" desc:"directory for rendered files (created 0700)"`
	FileMode     Var[os.FileMode] `envconfig:"AION_FILE_MODE" default:"0600" desc:"mode of rendered files (never world-accessible)"`

	PollInterval Var[time.Duration]  `envconfig:"AION_POLL_INTERVAL" default:"60s" desc:"how often secrets are re-read (less up to 10% jitter)"`
	RestartOn    Var[string]         `envconfig:"AION_RESTART_ON" default:"host" desc:"host, env or never: what restarts the child instead of a reload signal"`
	HostFields   Var[[]string]       `envconfig:"AION_HOST_FIELDS" default:"host,hostname,port,database,dbname,endpoint,address,addr,url,uri" desc:"secret fields whose change restarts the child (RESTART_ON=host)"`
	ReloadSignal Var[syscall.Signal] `envconfig:"AION_RELOAD_SIGNAL" default:"SIGHUP" desc:"signal sent on a change that needs no restart; none sends nothing"`

	StopSignal     Var[syscall.Signal] `envconfig:"AION_STOP_SIGNAL" default:"SIGTERM" desc:"signal aion-exec sends to stop the child for a restart or when another part of it failed; SIGTERM, SIGINT and SIGQUIT from outside are forwarded as they are"`
	StopTimeout    Var[time.Duration]  `envconfig:"AION_STOP_TIMEOUT" default:"10s" desc:"wait after the stop signal before SIGKILL"`
	SignalGroup    Var[bool]           `envconfig:"AION_SIGNAL_GROUP" default:"false" desc:"signal the child's whole process group (like tini -g)"`
	PassVaultCreds Var[bool]           `envconfig:"AION_PASS_VAULT_CREDENTIALS" default:"false" desc:"hand aion-exec's own Vault credentials to the child"`
	ChildUser      Var[string]         `envconfig:"AION_CHILD_USER" desc:"user[:group] (names or numbers) the child runs as; rendered files are handed to it"`
	MaskOutput     Var[bool]           `envconfig:"AION_MASK_OUTPUT" default:"false" desc:"replace secret values in the child's stdout and stderr by <concealed:NAME>"`

	RevokeOnExit Var[bool] `envconfig:"AION_REVOKE_ON_EXIT" default:"true" desc:"revoke the leases a supervising aion-exec holds when it ends (never in once or env)"`

	LogFormat Var[string] `envconfig:"AION_LOG_FORMAT" default:"text" desc:"text or json"`
	LogLevel  Var[string] `envconfig:"AION_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	// Derived by Load, not read.
	Secrets  []Secret `ignored:"true"`
	Warnings []string `ignored:"true"` // likely typos of setting names
}

// Secret is one AION_<NAME>_SECRET_PATH (or --secret NAME=PATH). Its path
// may join several parts with commas, read each on its own and merged in
// order into one secret, later keys winning: a KV secret with the
// database's host and a dynamic one with its user (docs/leases.md).
type Secret struct {
	Name  string   // lower-cased <NAME>: "db", "gateway_api_keys"
	Var   string   // the variable it came from, for messages
	Paths []string // with ${AION_ENV} expanded
}

// Restart policies of AION_RESTART_ON.
const (
	RestartHost  = "host"
	RestartEnv   = "env"
	RestartNever = "never"
)

// CredentialVars are aion-exec's own Vault credentials and the settings
// that name them: the child's environment never has them unless
// AION_PASS_VAULT_CREDENTIALS is set.
var CredentialVars = []string{"AION_VAULT_TOKEN", "VAULT_TOKEN", "AION_VAULT_APPROLE_SECRET_ID",
	"AION_VAULT_TOKEN_FILE", "AION_VAULT_APPROLE_SECRET_ID_FILE", "AION_VAULT_JWT_FILE",
	"AION_VAULT_CLIENT_KEY", "VAULT_CLIENT_KEY"}

// Methods are the login methods of AION_VAULT_AUTH_METHOD.
var Methods = []string{"token", "approle", "jwt", "kubernetes", "cert"}

// KubernetesTokenFile is where Kubernetes mounts a pod's service-account
// token, the JWT of the kubernetes method unless AION_VAULT_JWT_FILE says
// otherwise.
const KubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Problems lists every bad setting found in one pass, one line each.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

func (p *Problems) add(name, msg string) { *p = append(*p, name+" "+msg) }

// Load reads the settings from the process environment, then the flags in
// args (name is the command, for messages), which win; it returns the
// validated Config and the arguments after the flags. needAuth says whether
// Vault credentials are required (dev bootstrap creates them). The error
// wraps flag.ErrHelp for -h, else it is Problems or a flag error with exit
// code 64.
func Load(name string, args []string, needAuth bool) (*Config, []string, error) {
	c := &Config{}
	each(c, func(f field) { f.v.set(f.tag.Get("default"), "") })
	if err := envconfig.Process("", c); err != nil {
		return nil, nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read environment: %w", err))
	}
	each(c, func(f field) {
		if s, ok := os.LookupEnv(f.env); ok && strings.TrimSpace(s) != "" {
			f.v.sourced(f.env)
		}
		if fb := f.tag.Get("fallback"); fb != "" && !f.v.Set() {
			f.v.set(os.Getenv(fb), fb)
		}
	})
	fs, secretFlags := c.flags(name)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, sysexits.Wrap(sysexits.Usage, err)
	}
	if p := c.validate(needAuth, secretFlags); len(p) > 0 {
		return nil, nil, sysexits.Wrap(sysexits.Usage, p)
	}
	c.Warnings = typos(os.Environ())
	return c, fs.Args(), nil
}

// field is one setting of Config, found by reflection.
type field struct {
	env string
	tag reflect.StructTag
	v   setting
}

// each calls fn for every setting of c, in table order.
func each(c *Config, fn func(field)) {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		sf := rt.Field(i)
		if env := sf.Tag.Get("envconfig"); env != "" {
			fn(field{env: env, tag: sf.Tag, v: rv.Field(i).Addr().Interface().(setting)})
		}
	}
}

// flagName is the command-line spelling of a variable: AION_POLL_INTERVAL ->
// poll-interval.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "AION_")), "_", "-")
}

// flagValue lets a Var be set by a flag, naming the flag as its source.
type flagValue struct {
	v    setting
	name string
}

func (f flagValue) String() string     { return "" }
func (f flagValue) Set(s string) error { f.v.set(s, "--"+f.name); return nil }

// flags builds the command line from the table: every setting but the
// credentials has a flag, and --secret NAME=PATH adds a secret.
func (c *Config) flags(name string) (*flag.FlagSet, *secretList) {
	fs := flag.NewFlagSet("aion-exec "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	each(c, func(f field) {
		if f.tag.Get("flag") != "-" {
			fs.Var(flagValue{f.v, flagName(f.env)}, flagName(f.env), f.tag.Get("desc"))
		}
	})
	secrets := &secretList{}
	fs.Var(secrets, "secret", "NAME=PATH")
	return fs, secrets
}
