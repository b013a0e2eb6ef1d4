package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/statelog"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// Auth describes the live login, for `check` and for renewal. It holds no
// token: the token stays inside the API client.
type Auth struct {
	Method    string
	Accessor  string
	Policies  []string
	TTL       time.Duration // 0: never expires
	Renewable bool
	secret    *api.Secret // what the lifetime watcher renews
	asOf      time.Time   // when the TTL was read: before the request went out
}

// Login authenticates with the configured method, waiting up to
// StartupTimeout for a Vault that is unreachable or sealed, with a log line
// per change of state rather than per attempt.
func (c *Client) Login(ctx context.Context) (*Auth, error) {
	var a *Auth
	err := c.retryStartup(ctx, "log in", func(ctx context.Context) error {
		var err error
		a, err = c.login(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.setAuth(a)
	return a, nil
}

func (c *Client) setAuth(a *Auth) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth, c.dead = a, false
}

func (c *Client) current() *Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}

// loginOnce logs in unless another login finished since seen (the
// generation the caller saw when it decided to log in), so that the
// lifetime actor and a read that found the token dead never both log in.
func (c *Client) loginOnce(ctx context.Context, seen int) (*Auth, int, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.gen != seen {
		return c.current(), c.gen, nil
	}
	a, err := c.login(ctx)
	if err != nil {
		return nil, c.gen, err
	}
	c.gen++
	c.setAuth(a)
	select {
	case c.relogins <- struct{}{}:
	default: // one is already waiting
	}
	return a, c.gen, nil
}

func (c *Client) generation() int {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.gen
}

// login authenticates on a private copy of the client (a login passes
// through other tokens, a wrapping token among them, that concurrent reads
// must never use), then hands the new token to the shared client.
func (c *Client) login(ctx context.Context) (*Auth, error) {
	lc, err := c.api.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("copy the Vault client: %w", err)
	}
	isolate(lc)
	asOf := time.Now()
	var a *Auth
	switch c.opts.Auth.Method {
	case "approle":
		a, err = c.loginAppRole(ctx, lc)
	case "jwt", "kubernetes":
		a, err = c.loginJWT(ctx, lc)
	case "cert":
		a, err = c.loginMethod(ctx, lc, roleLogin{c.opts.Auth.Mount, map[string]any{"name": c.opts.Auth.Role}},
			"the client certificate of AION_VAULT_CLIENT_CERT")
	default:
		a, err = c.loginToken(ctx, lc)
	}
	if err != nil {
		return nil, err
	}
	c.api.SetToken(lc.Token())
	a.asOf = asOf
	return a, nil
}

func (c *Client) loginToken(ctx context.Context, lc *api.Client) (*Auth, error) {
	token, src, err := credential(c.opts.Auth.Token, "AION_VAULT_TOKEN", c.opts.Auth.TokenFile, "AION_VAULT_TOKEN_FILE")
	if err != nil {
		return nil, err
	}
	lc.SetToken(token)
	// The mount listing needs nothing but the token: ask for it while the
	// token is looked up, and a start costs one round trip less. Its
	// failures are left to ReadAll, which lists again if this did not.
	var listed sync.WaitGroup
	listed.Go(func() { c.loadMounts(ctx, lc) })
	s, err := lc.Auth().Token().LookupSelfWithContext(ctx)
	listed.Wait()
	if err != nil {
		var re *api.ResponseError
		err = Fail("look up the token from "+src, err)
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			err = sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("look up the token from %s: the token is invalid, expired or revoked", src))
		}
		return nil, err
	}
	a := &Auth{Method: "token"}
	a.Accessor, _ = s.Data["accessor"].(string)
	a.Policies, _ = s.TokenPolicies()
	a.TTL, _ = s.TokenTTL()
	a.Renewable, _ = s.TokenIsRenewable()
	a.secret = &api.Secret{Auth: &api.SecretAuth{
		ClientToken: token, Accessor: a.Accessor, Policies: a.Policies,
		LeaseDuration: int(a.TTL / time.Second), Renewable: a.Renewable,
	}}
	return a, nil
}

// secretIDPathRE is the creation path of a wrapped AppRole secret ID:
// auth/<mount>/role/<role>/secret-id (or custom-secret-id).
var secretIDPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^auth/.+/role/[^/]+/(custom-)?secret-id$`) })

// uuidRE matches a plain secret ID; anything else is treated as a wrapping token.
// Compiled on first use (an AppRole login), not in every start's init.
var uuidRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
})

func (c *Client) loginAppRole(ctx context.Context, lc *api.Client) (*Auth, error) {
	secretID, src, err := credential(c.opts.Auth.SecretID, "AION_VAULT_APPROLE_SECRET_ID", c.opts.Auth.SecretIDFile, "AION_VAULT_APPROLE_SECRET_ID_FILE")
	if err != nil {
		return nil, err
	}
	if !uuidRE().MatchString(secretID) {
		// A wrapping token is single use: keep what it unwrapped to, so a
		// re-login after the token's max TTL works until a new wrapped
		// secret ID arrives (as Vault Agent's AppRole auto-auth does).
		wrapped := secretID
		c.mu.Lock()
		cached, ok := c.unwrapped[wrapped]
		c.mu.Unlock()
		if ok {
			secretID = cached
		} else {
			var err error
			if secretID, err = unwrapSecretID(ctx, lc, wrapped, src); err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.unwrapped = map[string]string{wrapped: secretID}
			c.mu.Unlock()
		}
	}
	method, err := approle.NewAppRoleAuth(c.opts.Auth.RoleID, &approle.SecretID{FromString: secretID},
		approle.WithMountPath(c.opts.Auth.Mount))
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("set up approle login: %w", err))
	}
	return c.loginMethod(ctx, lc, method, "role ID or secret ID ("+src+")")
}

// loginJWT posts the JWT of AION_VAULT_JWT_FILE, read afresh (projected
// service-account tokens rotate hourly), with the role.
func (c *Client) loginJWT(ctx context.Context, lc *api.Client) (*Auth, error) {
	jwt, err := readCredential(c.opts.Auth.JWTFile, "AION_VAULT_JWT_FILE")
	if err != nil {
		return nil, err
	}
	what := "the JWT in AION_VAULT_JWT_FILE " + c.opts.Auth.JWTFile
	if exp, ok := jwtExpiry(jwt); ok && !exp.After(time.Now()) {
		what += " (it expired at " + exp.UTC().Format(time.RFC3339) + ")"
	}
	return c.loginMethod(ctx, lc, roleLogin{c.opts.Auth.Mount, map[string]any{"role": c.opts.Auth.Role, "jwt": jwt}}, what)
}

// roleLogin is the login of the jwt, kubernetes and cert methods: a role
// (and a JWT) posted to auth/<mount>/login.
type roleLogin struct {
	mount string
	data  map[string]any
}

func (l roleLogin) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	return c.Logical().WriteWithContext(ctx, "auth/"+l.mount+"/login", l.data)
}

// loginMethod logs in with method and describes the login. Vault refuses a
// bad credential with 400 (and cert login with 403): that is one line
// naming what was refused, exit 77, never the credential.
func (c *Client) loginMethod(ctx context.Context, lc *api.Client, method api.AuthMethod, credential string) (*Auth, error) {
	op := fmt.Sprintf("log in with %s at auth/%s", c.opts.Auth.Method, c.opts.Auth.Mount)
	if c.opts.Auth.Role != "" {
		op += " as role " + c.opts.Auth.Role
	}
	lc.ClearToken()
	s, err := lc.Auth().Login(ctx, method)
	var re *api.ResponseError
	switch {
	case errors.As(err, &re) && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusForbidden):
		why := strings.Join(re.Errors, "; ")
		if why == "" || c.opts.Auth.Method == "approle" {
			why = "invalid, expired or used up"
		}
		return nil, sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("%s: Vault refused %s: %s", op, credential, why))
	case err != nil:
		return nil, Fail(op, err)
	case s == nil || s.Auth == nil:
		return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("%s: Vault's answer holds no token", op))
	}
	return &Auth{Method: c.opts.Auth.Method, secret: s, Accessor: s.Auth.Accessor, Policies: s.Auth.TokenPolicies,
		TTL: time.Duration(s.Auth.LeaseDuration) * time.Second, Renewable: s.Auth.Renewable}, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (Vault
// does), to say when a refused token expired.
func jwtExpiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}, false
	}
	n, err := claims.Exp.Int64()
	return time.Unix(n, 0), err == nil && n > 0
}

// unwrapSecretID checks that a wrapping token was made by an AppRole
// secret-id endpoint before unwrapping it: a token that wraps something
// else (a root token, say) must not be consumed, as Vault's response-wrapping
// guidance advises. Unwrapping is single use.
func unwrapSecretID(ctx context.Context, lc *api.Client, wrapped, src string) (string, error) {
	lc.SetToken(wrapped)
	defer lc.ClearToken()
	info, err := lc.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": wrapped})
	if err != nil {
		if isInvalidWrap(err) {
			return "", sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("unwrap the secret ID from %s: the wrapping token was already used or has expired; issue a new wrapped secret ID", src))
		}
		return "", Fail("look up the wrapping token from "+src, err)
	}
	path, _ := info.Data["creation_path"].(string)
	if !secretIDPathRE().MatchString(path) {
		return "", sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("unwrap the secret ID from %s: the wrapping token was created by %q, not by an AppRole secret-id endpoint; refusing to unwrap it", src, path))
	}
	s, err := lc.Logical().UnwrapWithContext(ctx, "")
	if err != nil {
		if isInvalidWrap(err) {
			return "", sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("unwrap the secret ID from %s: the wrapping token was already used or has expired; issue a new wrapped secret ID", src))
		}
		return "", Fail("unwrap the secret ID from "+src, err)
	}
	if s == nil {
		return "", sysexits.Wrap(sysexits.DataErr, fmt.Errorf("unwrap the secret ID from %s: the wrapped response is empty", src))
	}
	id, _ := s.Data["secret_id"].(string)
	if id == "" {
		return "", sysexits.Wrap(sysexits.DataErr, fmt.Errorf("unwrap the secret ID from %s: the wrapped response holds no secret_id", src))
	}
	return id, nil
}

func isInvalidWrap(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || (re.StatusCode != 400 && re.StatusCode != 403) {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "wrapping token is not valid") || strings.Contains(e, "does not exist") || strings.Contains(e, "permission denied") {
			return true
		}
	}
	return re.StatusCode == 403
}

// credential is value, or the content of file when one is named (read
// afresh at every login: it may have been rotated), with the setting it
// came from, for messages.
func credential(value, env, file, fileEnv string) (string, string, error) {
	if file == "" {
		return value, env, nil
	}
	v, err := readCredential(file, fileEnv)
	return v, fileEnv + " " + file, err
}

func readCredential(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", sysexits.Wrap(sysexits.NoInput, fmt.Errorf("read %s %s: %w", name, path, errors.Unwrap(err)))
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", sysexits.Wrap(sysexits.Usage, fmt.Errorf("read %s %s: the file is empty", name, path))
	}
	return v, nil
}

// retryStartup runs op until it succeeds, fails for good, or StartupTimeout
// passes, counted from the first call: the login and the first read share
// it. Only transient failures (unreachable, sealed, 429, 5xx) are retried,
// with capped exponential backoff and full jitter, and never sooner than a
// Retry-After (the transport holds requests until then). op gets a context
// that ends with StartupTimeout, so that no wait inside it (a Retry-After
// held in the transport, a request to a node that hangs) outlasts the start.
func (c *Client) retryStartup(ctx context.Context, what string, op func(context.Context) error) error {
	c.mu.Lock()
	if c.startBy.IsZero() {
		c.startBy = time.Now().Add(c.opts.StartupTimeout)
	}
	by := c.startBy
	c.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	var state statelog.State
	var last error // the last failure Vault caused, not the deadline
	for {
		err := op(ctx)
		if err == nil {
			state.Recover(c.log, "vault reachable again", "addr", c.Addr())
			return nil
		}
		if ctx.Err() != nil && last != nil && errors.Is(err, context.DeadlineExceeded) {
			err = last // the deadline cut a request: say what Vault did before
		}
		if !Transient(err) {
			return err
		}
		last = err
		if ctx.Err() == nil {
			state.Fail(c.log, slog.LevelWarn, "waiting for vault", err, "op", what, "addr", c.Addr(), "timeout", c.opts.StartupTimeout)
		}
		select {
		case <-ctx.Done():
			return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("%w (gave up after AION_STARTUP_TIMEOUT=%s)", err, c.opts.StartupTimeout))
		case <-time.After(b.Next()):
		}
	}
}
