// Package vault logs in to HashiCorp Vault, keeps the token alive, resolves
// KV paths the way `vault kv` does and reads secrets. It knows nothing of
// templates or children: it hands back data. It must never put a token, a
// secret ID or a secret value into an error or a log line.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/filewatch"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// Options configure a Client. The caller builds them (from the settings, or
// dev bootstrap's own); this package reads no environment of its own.
type Options struct {
	// Addrs are Vault's API URLs: one, or the nodes of a cluster without a
	// load balancer, of which the first that answers is used.
	Addrs     []string
	Namespace string // X-Vault-Namespace; "" for none
	TLS       TLS
	Auth      AuthOptions
	KVMount   string // the KV mount of relative secret paths

	// StartupTimeout bounds the wait for an unreachable, sealed or
	// rate-limiting Vault at Login and the first ReadAll together, every
	// wait inside them (a Retry-After, a request) included.
	StartupTimeout time.Duration
	Log            *slog.Logger // nil discards
}

// AuthOptions say how to log in: Method is "token", "approle", "jwt",
// "kubernetes" or "cert", mounted at auth/<Mount>.
type AuthOptions struct {
	Method       string
	Mount        string
	Role         string // jwt, kubernetes; cert: the certificate role (optional)
	Token        string // token auth, from the environment
	TokenFile    string // token auth, re-read at every login
	RoleID       string
	SecretID     string // plain or a response-wrapping token
	SecretIDFile string
	JWTFile      string // jwt, kubernetes: re-read at every login
}

// files are the credential files of a login, watched for rotation.
func (a AuthOptions) files() []string {
	return []string{a.TokenFile, a.SecretIDFile, a.JWTFile}
}

// Client is a logged-in view of one Vault for one configuration.
type Client struct {
	api    *api.Client
	opts   Options
	trust  *trust
	nodes  *nodes
	log    *slog.Logger
	mounts mountCache
	// credWatch is the credential files' watch, from WatchCredentials;
	// KeepAlive's alone once it runs.
	credWatch *filewatch.Watcher

	mu        sync.Mutex
	auth      *Auth             // the live login; replaced by KeepAlive
	unwrapped map[string]string // the last wrapping token -> its secret ID
	dead      bool              // a read found the token gone; logged once
	startBy   time.Time         // the end of AION_STARTUP_TIMEOUT, from the first login
	started   bool              // the first read succeeded: later reads do not wait

	loginMu  sync.Mutex    // one login at a time: the lifetime's or a read's
	gen      int           // logins so far, under loginMu
	replaced chan struct{} // a read logged in anew: KeepAlive watches the new token
	relogins chan struct{} // any login after the first: see Relogins
}

// requestTimeout bounds one HTTP request; a fleet must not hang on a Vault
// that accepts connections and never answers.
const requestTimeout = 15 * time.Second

// New builds a client from opts alone. The Vault SDK reads VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_HEADERS and VAULT_WRAP_TTL from the process
// environment behind our back; each is overridden here so that only opts
// count.
func New(opts Options) (*Client, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	hc := cleanhttp.DefaultPooledClient()
	// Our own TLS config rather than the SDK's ConfigureTLS, which reads
	// the CA and client certificate once: cert-manager rotates them.
	t := &trust{opts: opts.TLS}
	hc.Transport.(*http.Transport).DialTLSContext = t.dial
	n, err := newNodes(opts.Addrs, hc.Transport, opts.Log)
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("AION_VAULT_ADDR: %w", err))
	}
	hc.Transport = n
	if opts.TLS.SkipVerify {
		opts.Log.Warn("AION_VAULT_SKIP_VERIFY is set: Vault's certificate is not verified, so anyone on the way to Vault can read the secrets")
	}
	ac := &api.Config{
		Address:    opts.Addrs[0],
		HttpClient: hc,
		// Each attempt has requestTimeout (nodes.send); this bounds them
		// all, and a wait for Retry-After.
		Timeout: time.Duration(len(opts.Addrs))*requestTimeout + maxGate,
		// No retries inside the SDK: every loop that talks to Vault (the
		// start within AION_STARTUP_TIMEOUT, polls, lease steps,
		// re-logins) backs off with full jitter of its own. The SDK's quick
		// retries (0.1-2 s) under those loops made a fleet come back in
		// step after an outage: 70% of 500 instances read within two
		// seconds of Vault's return (bench/fleet.sh), and they would send
		// sys/init twice.
		MaxRetries: 0,
		CheckRetry: func(context.Context, *http.Response, error) (bool, error) { return false, nil },
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("create Vault client for %s: %w", opts.Addrs[0], err))
	}
	c.SetHeaders(http.Header{})
	c.SetNamespace(opts.Namespace)
	isolate(c)
	return &Client{api: c, opts: opts, trust: t, nodes: n, log: opts.Log, replaced: make(chan struct{}, 1), relogins: make(chan struct{}, 1)}, nil
}

// Relogins delivers a value after every login that replaces the token
// (renewal ended, the token died, a credential file changed). Leases are
// children of the token that obtained them: Vault revokes them when that
// token ends, so whoever holds leases must fetch new secrets now.
func (c *Client) Relogins() <-chan struct{} { return c.relogins }

// Addr is the address in use: the one that answered last.
func (c *Client) Addr() string { return c.nodes.current() }

// isolate undoes what the SDK takes from the process environment on every
// NewClient and Clone: a VAULT_TOKEN, and VAULT_WRAP_TTL, which would wrap
// our own requests. Headers (VAULT_HEADERS, VAULT_NAMESPACE) are set by the
// caller.
func isolate(c *api.Client) {
	c.ClearToken()
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
}

// API is the underlying client, with no token until one is set: dev
// bootstrap drives Vault's sys/ endpoints through it.
func (c *Client) API() *api.Client { return c.api }

// classify wraps err with the exit code the contract gives its kind:
// 77 for a denial, 69 for an unreachable, sealed or overloaded Vault.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, code, ok := tlsFailure(err); ok {
		return sysexits.Wrap(code, err)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return sysexits.Wrap(sysexits.NoPerm, err)
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			return sysexits.Wrap(sysexits.Unavailable, err)
		case re.StatusCode == http.StatusBadRequest:
			// Vault refused what the settings asked for (a path, a
			// parameter, a role): a configuration error.
			return sysexits.Wrap(sysexits.Usage, err)
		case re.StatusCode == http.StatusNotFound:
			return sysexits.Wrap(sysexits.DataErr, err)
		}
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if Transient(err) {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	return err
}

// RateLimited reports whether Vault refused err's request with a 429 (a
// rate-limit quota): worth retrying, but never sooner than usual.
func RateLimited(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusTooManyRequests
}

// Transient reports whether err is worth retrying: Vault unreachable, sealed,
// standby without a leader, rate-limiting or failing with a 5xx.
func Transient(err error) bool {
	if _, _, ok := tlsFailure(err); ok {
		return false
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500 || re.StatusCode == http.StatusPreconditionFailed
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "EOF")
}

// Kind names err's failure for logging once per state: every way of Vault
// being away (unreachable, sealed, a 5xx, a standby without a leader) is
// one kind, a rate limit another, anything else its own text.
func Kind(err error) string {
	switch {
	case RateLimited(err):
		return "rate limited"
	case Transient(err):
		return "unavailable"
	}
	return err.Error()
}

// Cause is err in a few words: Vault's own message or what failed on the
// way to it ("cannot reach Vault: connection refused"), for log lines that
// name the operation themselves.
func Cause(err error) error { return short(err) }

// short turns an SDK error into its essence: the SDK's messages repeat the
// method and URL and spread over lines; ours name the operation once.
func short(err error) error {
	if msg, _, ok := tlsFailure(err); ok {
		return &statusError{msg: msg, err: err}
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch re.StatusCode {
		case http.StatusForbidden:
			msg = "permission denied"
		case http.StatusServiceUnavailable:
			if msg == "" || strings.Contains(msg, "sealed") {
				msg = "Vault is sealed or unavailable"
			}
		case http.StatusTooManyRequests:
			msg = "rate limited by Vault"
		}
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return &statusError{code: re.StatusCode, msg: msg, err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &statusError{msg: fmt.Sprintf("cannot reach Vault: %v", oe.Err), err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &statusError{msg: "Vault did not answer in time", err: err}
	}
	return err
}

type statusError struct {
	code int
	msg  string
	err  error
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.err }

// Fail is the one mapping of a Vault error to a message and an exit code,
// for this package and dev bootstrap: the operation once, Vault's own
// words (never the SDK's method, URL and status dump), and the code the
// contract gives the kind of failure.
func Fail(op string, err error) error {
	return classify(fmt.Errorf("%s: %w", op, short(err)))
}
