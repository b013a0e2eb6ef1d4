package refresh

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aionos/aion-exec/internal/vault"
)

// plan is what to do about a lease next, and when.
type plan struct {
	at     time.Time
	rotate bool // fetch a new secret; else renew the lease
}

// planFor times the next step of l, the lease of a secret just read or
// renewed (docs/leases.md):
//   - a renewable lease that its last renewal extended in full is renewed
//     at two thirds of it;
//   - a lease that cannot be extended in full (its max TTL is near, or it
//     is not renewable) is replaced by a new secret a margin of a tenth of
//     the lease before it ends;
//   - a certificate without a lease is re-issued at two thirds of its
//     validity (from NotBefore, or from when it arrived if later).
//
// Every deadline is splayed downwards by up to a tenth of its period, so
// that a fleet started together does not renew together, and no deadline
// is later than the rule says.
func planFor(l *vault.Lease, capped bool) plan {
	if l.ID == "" {
		// Vault backdates NotBefore (30s by default): for a short-lived
		// certificate two thirds of NotBefore..NotAfter can be past
		// already when it arrives. Its validity counts from when we got
		// it, if that is later.
		start := l.NotBefore
		if l.Obtained.After(start) {
			start = l.Obtained
		}
		validity := l.NotAfter.Sub(start)
		return plan{at: splay(start.Add(validity*2/3), validity), rotate: true}
	}
	if l.Renewable && !capped {
		return plan{at: splay(l.Obtained.Add(l.Duration*2/3), l.Duration)}
	}
	margin := l.Wanted / 10
	return plan{at: splay(l.Expires().Add(-margin), l.Wanted), rotate: true}
}

// splay moves at earlier by a random part of a tenth of period.
func splay(at time.Time, period time.Duration) time.Time {
	return at.Add(-rand.N(period/10 + 1))
}

// nextLease is the earliest lease step due, and its part; -1 for none.
func (r *Refresher) nextLease() (time.Time, int) {
	at, idx := time.Time{}, -1
	for i, p := range r.parts {
		if p.lease != nil && (idx < 0 || p.next.at.Before(at)) {
			at, idx = p.next.at, i
		}
	}
	return at, idx
}

// renew renews part i's lease and plans what follows: another renewal, or,
// once Vault grants less than the lease asked for, a new secret before it
// ends. A renewal refused because the lease is gone makes the rotation due
// now; one that fails for Vault being away is retried (ok false) until the
// rotation's margin.
func (r *Refresher) renew(ctx context.Context, i int) (ok bool, err error) {
	p := &r.parts[i]
	name := r.opts.Secrets[i].Name
	l, err := r.src.Renew(ctx, p.lease)
	switch {
	case errors.Is(err, vault.ErrLeaseGone):
		r.opts.Log.Info("lease gone; fetching a new secret", "secret", name, "lease", p.lease.ID)
		p.next = plan{at: time.Now(), rotate: true}
		return true, nil
	case err != nil:
		if rot := planFor(p.lease, true); time.Now().After(rot.at) {
			p.next = rot // past the margin: a new secret, not a renewal
		}
		return false, err
	}
	capped := l.Duration < l.Wanted
	p.lease, p.next = l, planFor(l, capped)
	what := "lease renewed"
	if capped {
		what = "lease renewed up to its max TTL; a new secret comes before it ends"
	}
	r.opts.Log.Info(what, "secret", name, "ttl", l.Duration, "expires", l.Expires().UTC().Format(time.RFC3339),
		"next", p.next.at.UTC().Format(time.RFC3339))
	return true, nil
}

// tokenBound makes every lease (not a certificate) due for rotation now,
// and says whether there was one.
func (r *Refresher) tokenBound() bool {
	found := false
	for i, p := range r.parts {
		if p.lease != nil && p.lease.ID != "" {
			r.parts[i].next = plan{at: time.Now(), rotate: true}
			found = true
		}
	}
	return found
}

// RevokeAll revokes every lease the Refresher holds, as a supervised run
// ends (AION_REVOKE_ON_EXIT): the database users are dropped at once. A
// revocation that fails is logged, not fatal.
func (r *Refresher) RevokeAll(ctx context.Context) {
	for i, p := range r.parts {
		if p.lease == nil || p.lease.ID == "" {
			continue
		}
		name := r.opts.Secrets[i].Name
		if err := r.src.Revoke(ctx, p.lease); err != nil {
			r.opts.Log.Warn("lease revocation failed; Vault revokes it when it expires", "secret", name,
				"expires", p.lease.Expires().UTC().Format(time.RFC3339), "err", err)
			continue
		}
		r.opts.Log.Info("lease revoked", "secret", name, "lease", p.lease.ID)
	}
}

// logRotated says what a rotation brought: one line per lease, names and
// times only.
func (r *Refresher) logRotated(idx []int) {
	for _, i := range idx {
		p := r.parts[i]
		if p.lease == nil {
			continue
		}
		what := "lease rotated: a new secret"
		if p.lease.ID == "" {
			what = "certificate re-issued"
		}
		r.opts.Log.Info(what, "secret", r.opts.Secrets[i].Name, "lease", p.lease.ID,
			"expires", p.lease.Expires().UTC().Format(time.RFC3339), "next", p.next.at.UTC().Format(time.RFC3339))
	}
}
