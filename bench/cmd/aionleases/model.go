package main

import (
	"math/rand/v2"
	"time"
)

// Cycle is one user's life as a tool ran it: from the read that obtained it
// to the read of the next one, and the renewals in between. Its requests
// per day (one read and the renewals, per cycle, scaled to a day) are the
// steady state, without the start's one-off requests.
type Cycle struct {
	Lifetime       time.Duration `json:"lifetime_ns"`
	SimLifetime    string        `json:"simulated_lifetime"`
	Renewals       int           `json:"renewals"`
	RequestsPerDay float64       `json:"requests_per_simulated_day"`
}

// firstCycle is the first complete cycle of creds, if there is one.
func firstCycle(creds []*Credential, day time.Duration, scale float64) *Cycle {
	if len(creds) < 2 {
		return nil
	}
	life := creds[1].Read.Sub(creds[0].Read)
	if life <= 0 {
		return nil
	}
	return &Cycle{Lifetime: life, SimLifetime: simDur(life, scale), Renewals: creds[0].Renewals,
		RequestsPerDay: float64(1+creds[0].Renewals) * float64(day) / float64(life)}
}

// Model is what docs/leases.md's rules give for one user, on average over
// many random splays: renew at 2/3 of the granted lease less up to a tenth
// of it; a renewal granted less than asked (Vault grants whole seconds up
// to the max TTL) is the last; the next user is read a tenth of the lease
// before the capped end, less up to another tenth.
type Model struct {
	Renewals       float64 `json:"renewals"`
	SimLifetime    string  `json:"simulated_lifetime"`
	RequestsPerDay float64 `json:"requests_per_simulated_day"`
}

func aionModel(ttl, maxTTL time.Duration, scale float64, runs int, rng *rand.Rand) Model {
	var renewals, life float64
	for range runs {
		t, granted, n := time.Duration(0), ttl, 0
		for {
			at := t + granted*2/3 - time.Duration(rng.Int64N(int64(granted/10)+1))
			g := min(ttl, (maxTTL - at).Truncate(time.Second))
			n++
			t, granted = at, g
			if g < ttl {
				break
			}
		}
		end := t + granted - ttl/10 - time.Duration(rng.Int64N(int64(ttl/10)+1))
		renewals += float64(n)
		life += float64(end)
	}
	renewals /= float64(runs)
	life /= float64(runs)
	return Model{Renewals: renewals, SimLifetime: simDur(time.Duration(life), scale),
		RequestsPerDay: (1 + renewals) * float64(maxTTL) / life}
}
