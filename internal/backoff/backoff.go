// Package backoff is capped exponential backoff with "equal jitter" (half
// fixed, half random): a fleet that lost Vault together must not come back
// together, and no wait collapses to zero.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out growing waits between Min and Max.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the next wait: the n-th is in [d/2, d] for d = min(Min·2ⁿ, Max).
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.n, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Jitter spreads d downwards by up to 10%, so a fleet started together
// polls apart and no wait is longer than d: a change must reach the child
// within one interval.
func Jitter(d time.Duration) time.Duration {
	return d - rand.N(d/10+1)
}
