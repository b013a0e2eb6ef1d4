package vault

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/filewatch"
	"github.com/aionos/aion-exec/internal/statelog"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// KeepAlive is the login's lifetime, an actor of the supervised run: it
// renews the token before it expires (Vault's LifetimeWatcher renews at
// about two thirds of the TTL) and, when renewal ends (max TTL reached,
// token revoked, renewal refused), logs in again: AppRole with its secret
// ID, JWT or certificate, token auth by re-reading the token file. A token
// that never expires needs nothing. Failed logins are retried with backoff,
// logged once per state; reads keep using the old token meanwhile. A change
// of the token, secret-ID or JWT file on disk logs in again at once.
//
// It returns nil when ctx ends, and an error only when the credential files
// cannot be watched at start: a rotated credential that goes unnoticed
// would end in an expired login. A directory of theirs lost later is
// watched again when it is back, and its return counts as a change
// (filewatch).
func (c *Client) KeepAlive(ctx context.Context) error {
	if err := c.WatchCredentials(ctx); err != nil {
		return err
	}
	reauth := make(<-chan struct{})
	if c.credWatch != nil {
		defer c.credWatch.Stop()
		reauth = c.credWatch.C
	}
	b := backoff.Backoff{Min: time.Second, Max: time.Minute}
	for {
		seen, a := c.generation(), c.current()
		switch c.watch(ctx, a, reauth) {
		case stopped:
			return nil
		case replaced:
			continue // a read logged in anew after the token died
		case rotated:
			c.log.Info("credential file changed; logging in again")
		}
		if !c.relogin(ctx, &b, seen) {
			return nil
		}
	}
}

// WatchCredentials starts the watch of the token, secret-ID or JWT file
// that KeepAlive reads, until ctx ends or KeepAlive returns. A supervised
// run calls it before the child starts (see refresh.Refresher.Watch);
// KeepAlive starts it otherwise.
func (c *Client) WatchCredentials(ctx context.Context) error {
	dirs := filewatch.DirsOf(c.opts.Auth.files()...)
	if len(dirs) == 0 || c.credWatch != nil {
		return nil
	}
	w, err := filewatch.Start(ctx, c.log, dirs, filewatch.Files(c.opts.Auth.files()...))
	if err != nil {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("watch the credential files: %w", err))
	}
	c.credWatch = w
	return nil
}

// relogin logs in until it succeeds or ctx ends (false).
func (c *Client) relogin(ctx context.Context, b *backoff.Backoff, seen int) bool {
	var state statelog.State
	for {
		na, gen, err := c.loginOnce(ctx, seen)
		if err == nil {
			b.Reset()
			if gen == seen+1 {
				c.log.Info("vault login renewed", "method", na.Method, "ttl", na.TTL)
			}
			return true
		}
		seen = gen
		wait := b.Next()
		state.FailAs(c.log, slog.LevelWarn, Kind(err), "vault login failed; retrying with backoff", err, "method", c.opts.Auth.Method)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// why watch returned.
type outcome int

const (
	stopped  outcome = iota // ctx ended
	expiring                // renewal ended or the token nears its expiry
	rotated                 // a credential file changed
	replaced                // a read logged in anew
)

// watch renews a until renewal ends, the token nears its expiry, a
// credential file changes or ctx ends.
func (c *Client) watch(ctx context.Context, a *Auth, reauth <-chan struct{}) outcome {
	var (
		due     <-chan time.Time // nil: the token never expires
		ended   <-chan error
		renewed <-chan *api.RenewOutput
	)
	if a != nil && a.TTL > 0 {
		t := time.NewTimer(time.Until(a.asOf.Add(actAt(a.TTL, a.Renewable))))
		defer t.Stop()
		due = t.C
	}
	var stopWatcher func()
	defer func() {
		if stopWatcher != nil {
			stopWatcher()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return stopped
		case <-reauth:
			return rotated
		case <-c.replaced:
			return replaced
		case <-due:
			due = nil
			w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: a.secret})
			if !a.Renewable || err != nil {
				c.log.Info("vault token is about to expire")
				return expiring
			}
			stopped := make(chan struct{})
			go func() { defer close(stopped); w.Start() }()
			stopWatcher = func() { w.Stop(); <-stopped }
			ended, renewed = w.DoneCh(), w.RenewCh()
		case err := <-ended:
			if err != nil {
				c.log.Warn("vault token renewal failed", "err", short(err))
			} else {
				c.log.Info("vault token reached its max TTL")
			}
			return expiring
		case r := <-renewed:
			granted := time.Duration(r.Secret.Auth.LeaseDuration) * time.Second
			c.log.Debug("vault token renewed", "ttl", granted)
			if capped(a, granted) {
				c.log.Info("vault token nears its max TTL", "ends", time.Now().Add(granted).UTC().Format(time.RFC3339))
				return expiring
			}
		}
	}
}

// capped reports whether a renewal granted less than the login's TTL: the
// token has reached its max TTL and ends within one TTL. A method that can
// mint a new token logs in again at once rather than when the
// LifetimeWatcher gives up (within a tenth or so of the end): leases are
// the token's children and Vault revokes them with it, so the new token's
// secrets must reach the child while the old ones still work. A token read
// from a file gives the same token again; it renews to the end.
func capped(a *Auth, granted time.Duration) bool {
	return a.Method != "token" && granted < a.TTL
}

// actAt is how long after a login to act on its token. Vault's
// LifetimeWatcher renews the moment it starts; a fresh token needs nothing
// until two thirds of its TTL, and a fleet restarting together must not
// double its start-up requests. A token that cannot be renewed is replaced
// at 90% of its TTL, but at least 2s early: Vault keeps a batch token's
// creation time in whole seconds, so it may expire up to a second before
// the TTL runs out on our clock.
func actAt(ttl time.Duration, renewable bool) time.Duration {
	if renewable {
		return ttl * 2 / 3
	}
	return max(ttl/2, min(ttl*9/10, ttl-2*time.Second))
}
