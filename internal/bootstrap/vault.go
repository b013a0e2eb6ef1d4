package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/statelog"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// bootstrapper carries one run's state from step to step.
type bootstrapper struct {
	opts Options
	sum  *Summary
	api  *api.Client // root token once unsealed

	roleIDs map[string]string // service -> AppRole role ID
	token   string            // the dev token, for the env file only
}

func newBootstrapper(opts Options, sum *Summary) (*bootstrapper, error) {
	if opts.Addr == "" {
		return nil, sysexits.Wrap(sysexits.Usage, errors.New("bootstrap Vault: AION_VAULT_ADDR is not set"))
	}
	// No SDK retries: sys/init must never be sent twice (the second answer
	// would lose the keys), and the wait loop retries itself. The
	// namespace applies only after unseal.
	vc, err := vault.New(vault.Options{Addrs: []string{opts.Addr}, TLS: opts.TLS, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	return &bootstrapper{opts: opts, sum: sum, api: vc.API(), roleIDs: map[string]string{}}, nil
}

// waitHealth polls sys/health until ready accepts the answer or ctx ends,
// logging once per change of state rather than once per attempt.
func (b *bootstrapper) waitHealth(ctx context.Context, what string, ready func(*api.HealthResponse) bool) (*api.HealthResponse, error) {
	bo := backoff.Backoff{Min: b.opts.pollMin, Max: 3 * time.Second}
	var waiting statelog.State
	last := "" // the state met last, for the message if the wait ends
	for {
		h, err := b.api.Sys().HealthWithContext(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			// the deadline hit mid-request: keep the last state for the message
		case err != nil:
			last = errState(err)
		default:
			last = healthState(h)
			if ready(h) {
				if what != "answering" {
					waiting.Recover(b.opts.Log, "vault "+what, "addr", b.opts.Addr, "state", last)
				}
				return h, nil
			}
		}
		if last != "" {
			waiting.FailAs(b.opts.Log, slog.LevelInfo, last, "waiting for vault", errors.New(last),
				"until", what, "addr", b.opts.Addr, "timeout", b.opts.Timeout)
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return nil, sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("wait for Vault at %s to be %s: %s (gave up after AION_VAULT_BOOTSTRAP_TIMEOUT=%s)",
					b.opts.Addr, what, last, b.opts.Timeout))
			}
			return nil, ctx.Err()
		case <-time.After(bo.Next()):
		}
	}
}

// errState is a failed health request in a few words for the log: the
// SDK's own text spans lines and repeats the URL.
func errState(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		if len(re.Errors) > 0 {
			return fmt.Sprintf("HTTP %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
		}
		return fmt.Sprintf("HTTP %d", re.StatusCode)
	}
	return vault.Cause(err).Error()
}

func healthState(h *api.HealthResponse) string {
	switch {
	case !h.Initialized:
		return "not initialised"
	case h.Sealed:
		return "sealed"
	case h.Standby:
		return "standby"
	}
	return "active"
}
