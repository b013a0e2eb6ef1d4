package vault

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// Lease is how long a secret of a non-KV engine lives: a lease Vault can
// renew and revoke (database credentials), or a certificate's validity
// (PKI, which issues certificates without a lease by default).
type Lease struct {
	ID        string        // "" for a certificate without a lease
	Duration  time.Duration // granted at the last read or renewal
	Renewable bool
	Obtained  time.Time // when the request that granted Duration went out
	// Wanted is the duration first granted, asked for again at every
	// renewal; Vault grants less once the lease nears its max TTL.
	Wanted time.Duration

	NotBefore, NotAfter time.Time // a certificate's validity; zero if none
}

// Expires is when the secret stops working.
func (l *Lease) Expires() time.Time {
	if !l.NotAfter.IsZero() && (l.ID == "" || l.NotAfter.Before(l.Obtained.Add(l.Duration))) {
		return l.NotAfter
	}
	return l.Obtained.Add(l.Duration)
}

// readLeased reads a secret outside every KV mount the way consul-template's
// `secret` does: GET, or with parameters (after ? in its path) a write with
// them as the body (pki/issue/web?common_name=web.internal).
func (c *Client) readLeased(ctx context.Context, s Ref, m mount, path, query string) (*Secret, error) {
	out := &Secret{Name: s.Name, Path: s.Path, Mount: m.path, Engine: m.engine, APIPath: path}
	asOf := time.Now()
	op, capability := fmt.Sprintf("read secret %s at %s", s.Name, path), "read"
	var sec *api.Secret
	var err error
	if query == "" {
		sec, err = c.api.Logical().ReadWithContext(ctx, path)
	} else {
		params, perr := url.ParseQuery(query)
		if perr != nil {
			return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("%s: the parameters after ? do not parse: %v", op, perr))
		}
		body := map[string]any{}
		for k, vs := range params {
			body[k] = vs[0]
			if len(vs) > 1 {
				body[k] = vs
			}
		}
		op, capability = fmt.Sprintf("write secret %s at %s", s.Name, path), "update"
		sec, err = c.api.Logical().WriteWithContext(ctx, path, body)
	}
	if err != nil {
		err = Fail(op, err)
		if sysexits.Code(err) == sysexits.NoPerm {
			err = sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("%w: the token's policies lack %q on %s", err, capability, path))
		}
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("%s: no secret at this path", op))
	}
	out.Data = sec.Data
	out.Lease = leaseOf(sec, asOf)
	return out, nil
}

// leaseOf is the lease of sec, or nil when it has none (then the secret is
// polled like a KV secret).
func leaseOf(sec *api.Secret, asOf time.Time) *Lease {
	l := &Lease{ID: sec.LeaseID, Duration: time.Duration(sec.LeaseDuration) * time.Second, Renewable: sec.Renewable, Obtained: asOf}
	l.Wanted = l.Duration
	if pemText, ok := sec.Data["certificate"].(string); ok {
		if b, _ := pem.Decode([]byte(pemText)); b != nil {
			if cert, err := x509.ParseCertificate(b.Bytes); err == nil {
				l.NotBefore, l.NotAfter = cert.NotBefore, cert.NotAfter
			}
		}
	}
	if l.ID == "" && l.NotAfter.IsZero() {
		return nil
	}
	return l
}

// ErrLeaseGone is a renewal refused because the lease no longer exists (it
// expired, or was revoked): only a new secret helps.
var ErrLeaseGone = errors.New("the lease no longer exists")

// Renew asks Vault to extend l by its Wanted duration and returns the lease
// as granted: shorter when its max TTL is near.
func (c *Client) Renew(ctx context.Context, l *Lease) (*Lease, error) {
	asOf := time.Now()
	sec, err := c.api.Sys().RenewWithContext(ctx, l.ID, int(l.Wanted/time.Second))
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
			return nil, fmt.Errorf("renew lease %s: %w", l.ID, ErrLeaseGone)
		}
		return nil, Fail("renew lease "+l.ID, err)
	}
	n := *l
	n.Duration, n.Renewable, n.Obtained = time.Duration(sec.LeaseDuration)*time.Second, sec.Renewable, asOf
	return &n, nil
}

// Revoke ends l at once: Vault drops what it made (the database user).
func (c *Client) Revoke(ctx context.Context, l *Lease) error {
	if l.ID == "" {
		return nil
	}
	if err := c.api.Sys().RevokeWithContext(ctx, l.ID); err != nil {
		return Fail("revoke lease "+l.ID, err)
	}
	return nil
}
