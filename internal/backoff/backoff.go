// Package backoff is capped exponential backoff with "full jitter" (a wait
// drawn uniformly from the whole window): a fleet that lost Vault together
// must not come back together. Equal jitter, the half-fixed kind, leaves
// half the window empty and so doubles the crowd at a recovery.
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

// floor keeps a drawn wait from being zero: a loop that retried at once
// would be a tight one for the unlucky draw.
const floor = 10 * time.Millisecond

// Next returns the next wait: the n-th is uniform in [floor, d] for
// d = min(Min·2ⁿ, Max).
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.n, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.n++
	return max(floor, rand.N(d+1))
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Jitter spreads d downwards by up to 10%, so a fleet started together
// polls apart and no wait is longer than d: a change must reach the child
// within one interval.
func Jitter(d time.Duration) time.Duration {
	return d - rand.N(d/10+1)
}
