// Package bootstrap prepares a local Vault for development, the way the
// platform's scripts/bootstrap_vault_dev.py did: it waits for the server,
// initialises and unseals it, enables KV v2 and AppRole, writes the policies
// of policies/vault, seeds the dev secrets (a fresh development CA and
// service certificates among them), and hands a scoped, renewable token to
// .env.vault.dev.
//
// Running it again is safe: it never re-initialises, never seals, never
// overwrites a secret that exists (a developer may have edited it) and
// rewrites a file only when its bytes change. It must never print or log the
// root token, the unseal key, the dev token or any secret value: those live
// only in the 0600 files it writes.
package bootstrap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aionos/aion-exec/internal/vault"
)

// Defaults of Options, relative to the current directory like the Python
// script's.
const (
	DefaultStateDir = ".vault"
	DefaultEnvFile  = ".env.vault.dev"
	UnsealFileName  = "dev-unseal.json"
)

// Env is the AION_ENV label dev bootstrap seeds: secrets live at
// <mount>/aionos/dev/<name>.
const Env = "dev"

// DevPolicy is the policy of the development token.
const DevPolicy = "aion-exec-dev"

// Services are the platform's services: each gets the policy of the same
// name from policies/vault and an AppRole bound to it.
var Services = []string{"gateway", "control", "console"}

// Options configures a run. Addr, KVMount, AppRoleMount and Timeout are
// the settings' (their defaults live in internal/config); the rest have
// defaults here.
type Options struct {
	Addr         string    // Vault API URL
	KVMount      string    // KV-v2 mount to enable and seed
	AppRoleMount string    // AppRole auth mount
	Namespace    string    // Vault Enterprise namespace for everything after unseal
	TLS          vault.TLS // how to trust Vault, as aion-exec's own runs do

	// Timeout bounds the wait for Vault to answer and, once unsealed, to
	// become active (AION_VAULT_BOOTSTRAP_TIMEOUT).
	Timeout time.Duration

	StateDir string // holds UnsealFileName; default DefaultStateDir
	EnvFile  string // the sourceable env file; default DefaultEnvFile

	Log *slog.Logger // default: discard

	now     func() time.Time // for certificate validity in tests
	pollMin time.Duration    // first wait between health polls
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.EnvFile == "" {
		o.EnvFile = DefaultEnvFile
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.pollMin == 0 {
		o.pollMin = 100 * time.Millisecond
	}
}

func (o *Options) unsealFile() string { return filepath.Join(o.StateDir, UnsealFileName) }

// Step is one thing a run looked at, and what it did about it.
type Step struct {
	Kind   string // "vault", "mount", "policy", "secret", "approle", "token", "file"
	Name   string // what: a path, a policy name, a file
	Result string // "created", "present", "updated", "unsealed", ...
}

// Summary lists the steps of a run in order. It never holds a secret value.
type Summary struct {
	Addr  string
	Steps []Step
}

func (s *Summary) add(kind, name, result string) {
	s.Steps = append(s.Steps, Step{kind, name, result})
}

// Count returns how many steps had result.
func (s *Summary) Count(result string) int {
	n := 0
	for _, st := range s.Steps {
		if st.Result == result {
			n++
		}
	}
	return n
}

// WriteTo prints the summary as an aligned table.
func (s *Summary) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "dev bootstrap of %s\n", s.Addr)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, st := range s.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", st.Kind, st.Name, st.Result)
	}
	tw.Flush()
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Run bootstraps the Vault at opts.Addr. The summary lists what was done up
// to the failure, if any. Errors carry a sysexits code: 64 for configuration
// and local files, 69 for a Vault that is unreachable, sealed or too slow, 77
// for a denial.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	opts.defaults()
	sum := &Summary{Addr: opts.Addr}
	b, err := newBootstrapper(opts, sum)
	if err != nil {
		return sum, err
	}
	for _, step := range []func(context.Context) error{
		b.unseal,
		b.enableKV,
		b.writePolicies,
		b.seedSecrets,
		b.enableAppRole,
		b.writeRoles,
		b.devToken,
		b.writeEnvFile,
	} {
		if err := step(ctx); err != nil {
			return sum, err
		}
	}
	return sum, nil
}
