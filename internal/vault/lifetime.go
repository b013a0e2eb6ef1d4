package vault

import (
	"context"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/backoff"
)

// KeepAlive keeps the login alive until ctx ends: it renews the token before
// it expires (Vault's LifetimeWatcher renews at about two thirds of the TTL)
// and, when renewal ends (max TTL reached, token revoked, renewal refused),
// logs in again: AppRole with its secret ID, token auth by re-reading the
// token file. A token that never expires needs nothing. Failed logins are
// retried with backoff; reads keep using the old token meanwhile.
//
// reauth, when it receives, forces a fresh login (a token or secret-ID file
// changed on disk). KeepAlive returns only when ctx ends.
func (c *Client) KeepAlive(ctx context.Context, reauth <-chan struct{}) {
	b := backoff.Backoff{Min: time.Second, Max: time.Minute}
	for {
		c.mu.Lock()
		a := c.auth
		c.mu.Unlock()
		if done := c.watch(ctx, a, reauth); done {
			return
		}
		failed := "" // the failure we are in, logged once
		for {
			na, err := c.login(ctx)
			if err == nil {
				b.Reset()
				c.mu.Lock()
				c.auth = na
				c.mu.Unlock()
				c.log.Info("vault login renewed", "method", na.Method, "ttl", na.TTL)
				break
			}
			wait := b.Next()
			if msg := err.Error(); msg != failed {
				c.log.Warn("vault login failed; retrying with backoff", "method", c.cfg.AuthMethod, "err", err)
				failed = msg
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// watch renews a until renewal ends, the token nears its expiry or a
// re-login is asked for (false), or until ctx ends (true).
func (c *Client) watch(ctx context.Context, a *Auth, reauth <-chan struct{}) bool {
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
			return true
		case <-reauth:
			return false
		case <-due:
			due = nil
			w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: a.secret})
			if !a.Renewable || err != nil {
				c.log.Info("vault token is about to expire")
				return false
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
			return false
		case r := <-renewed:
			c.log.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
		}
	}
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

// Auth returns the live login.
func (c *Client) Auth() *Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}
