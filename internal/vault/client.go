// Package vault logs in to HashiCorp Vault, keeps the token alive, resolves
// KV paths the way `vault kv` does and reads secrets. It knows nothing of
// templates or children: it hands back data. It must never put a token, a
// secret ID or a secret value into an error or a log line.
package vault

import (
	"context"
	"crypto/tls"
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

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// Client is a logged-in view of one Vault for one configuration.
type Client struct {
	api    *api.Client
	cfg    *config.Config
	log    *slog.Logger
	mounts mountCache

	mu        sync.Mutex
	auth      *Auth             // the live login; replaced by KeepAlive
	unwrapped map[string]string // the last wrapping token -> its secret ID
}

// requestTimeout bounds one HTTP request; a fleet must not hang on a Vault
// that accepts connections and never answers.
const requestTimeout = 15 * time.Second

// New builds a client from cfg alone. The Vault SDK reads VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_HEADERS and VAULT_WRAP_TTL from the process
// environment behind our back; each is overridden here so that only the
// validated configuration counts.
func New(cfg *config.Config, log *slog.Logger) (*Client, error) {
	hc := cleanhttp.DefaultPooledClient()
	// cleanhttp's transport has no TLS config, and the SDK's ConfigureTLS
	// then drops the CA on the floor: give it one to fill in.
	hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	ac := &api.Config{
		Address:      cfg.VaultAddr,
		HttpClient:   hc,
		Timeout:      requestTimeout,
		MaxRetries:   2,
		MinRetryWait: 100 * time.Millisecond,
		MaxRetryWait: time.Second,
	}
	if err := ac.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert, CAPath: cfg.CAPath}); err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("configure TLS from AION_VAULT_CACERT: %w", err))
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("create Vault client for %s: %w", cfg.VaultAddr, err))
	}
	c.SetHeaders(http.Header{})
	c.SetNamespace(cfg.Namespace)
	isolate(c)
	return &Client{api: c, cfg: cfg, log: log}, nil
}

// isolate undoes what the SDK takes from the process environment on every
// NewClient and Clone: a VAULT_TOKEN, and VAULT_WRAP_TTL, which would wrap
// our own requests. Headers (VAULT_HEADERS, VAULT_NAMESPACE) are set by the
// caller.
func isolate(c *api.Client) {
	c.ClearToken()
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
}

// API exposes the underlying client for callers that need a raw request.
func (c *Client) API() *api.Client { return c.api }

// classify wraps err with the exit code the contract gives its kind:
// 77 for a denial, 69 for an unreachable, sealed or overloaded Vault.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return sysexits.Wrap(sysexits.NoPerm, err)
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			return sysexits.Wrap(sysexits.Unavailable, err)
		case re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusNotFound:
			return sysexits.Wrap(sysexits.DataErr, err)
		}
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if Transient(err) {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	return err
}

// Transient reports whether err is worth retrying: Vault unreachable, sealed,
// standby without a leader, rate-limiting or failing with a 5xx.
func Transient(err error) bool {
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

// short turns an SDK error into its essence: the SDK's messages repeat the
// method and URL and spread over lines; ours name the operation once.
func short(err error) error {
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

// fail is the one way errors leave this package: operation, short cause,
// exit code.
func fail(op string, err error) error {
	return classify(fmt.Errorf("%s: %w", op, short(err)))
}
