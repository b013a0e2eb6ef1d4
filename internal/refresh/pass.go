// Package refresh keeps what the child consumes current. One pass reads
// what is due from Vault, renders the templates, compares the result with
// the last render, writes the changed files and returns one decision:
// nothing, start, reload or restart, with what changed. The first start,
// every poll, every template edit and every lease rotation run the same
// pass; Run is the actor that triggers it, and keeps each lease alive
// (renewal, or a new secret before it ends). It knows nothing of the
// child: the caller acts on the decision. It never logs a value, only
// secret, field and output names.
package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/aionos/aion-exec/internal/atomicfile"
	"github.com/aionos/aion-exec/internal/filewatch"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// Reader reads secrets and keeps leases; *vault.Client is the real one.
type Reader interface {
	ReadAll(ctx context.Context, refs []vault.Ref) ([]*vault.Secret, error)
	Renew(ctx context.Context, l *vault.Lease) (*vault.Lease, error)
	Revoke(ctx context.Context, l *vault.Lease) error
}

// Options configure a Refresher.
type Options struct {
	// Secrets are the parts to read, in order: parts of the same name are
	// merged into one secret, later keys winning.
	Secrets   []vault.Ref
	Label     string // AION_ENV, .env in the template data
	Templates render.Options
	// Owner, when set, gets the render directory and every file in it
	// (the child runs as another user).
	Owner *atomicfile.Owner
	// HostFields and RestartOn are the contract's restart rule.
	HostFields []string
	RestartOn  string
	// Check, when set, refuses a render the child could not be started
	// with (an environment past the kernel's limits); the last good render
	// stays.
	Check func(env []string) error

	// Relogins, when set, tells Run that Vault's token was replaced: the
	// leases of the old token end with it, so leased secrets are fetched
	// anew at once (certificates, which have no lease, are not).
	Relogins <-chan struct{}

	// Interval is the poll interval of Run; ReloadName names the reload
	// signal in its log lines ("" when none is sent).
	Interval   time.Duration
	ReloadName string
	Log        *slog.Logger
}

// Due says what a pass reads anew; what is not due comes from the last
// pass. A part never read is always due.
type Due struct {
	Static    bool  // re-read every part without a lease (KV): a poll
	Leased    []int // fetch these leased parts anew: their lease is ending
	Templates bool  // parse the templates again
}

// All is due at the first pass.
var All = Due{Static: true, Templates: true}

// Decision is the outcome of a pass.
type Decision struct {
	Action Action
	Change Change
	Env    []string // the rendered environment, sorted NAME=value
	Output *render.Output
	Data   render.Data // what it was rendered from
}

// Refresher holds the last good render and the parts it came from. It is
// owned by one goroutine.
type Refresher struct {
	opts  Options
	src   Reader
	set   *render.Set
	data  render.Data
	out   *render.Output
	parts []part // as Options.Secrets
	// unrendered: parts hold what was read since the last good render
	// (a pass that read, then failed to render or write).
	unrendered bool
	edits      *filewatch.Watcher // the templates directory's, from Watch
}

// part is one secret path as last read.
type part struct {
	data  map[string]any
	lease *vault.Lease // nil: no lease, polled
	read  bool
	next  plan // what to do about the lease, and when
}

// New returns a Refresher that reads through src.
func New(opts Options, src Reader) *Refresher {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Refresher{opts: opts, src: src, parts: make([]part, len(opts.Secrets))}
}

// Load parses the templates, before any request goes to Vault: a broken
// template must fail before a start waits on a Vault that is down.
func (r *Refresher) Load() error {
	set, err := render.Load(r.opts.Templates)
	if err == nil {
		r.set = set
	}
	return err
}

// stage names the step of a pass that failed, for the caller's log.
type stage string

const (
	reading   stage = "read"
	rendering stage = "render"
	writing   stage = "write"
)

// failure is a pass that failed at one stage; the last good render stays.
type failure struct {
	stage stage
	err   error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// Refresh is the pass: read what is due, render, diff against the last
// good render, write the changed files, decide. On any error nothing is
// written and the last good render stays.
func (r *Refresher) Refresh(ctx context.Context, due Due) (Decision, error) {
	set, data := r.set, r.data
	if due.Templates || set == nil {
		var err error
		if set, err = render.Load(r.opts.Templates); err != nil {
			return Decision{}, &failure{rendering, err}
		}
	}
	parts, read, err := r.read(ctx, due)
	if err != nil {
		return Decision{}, &failure{reading, err}
	}
	if read || r.unrendered {
		data = merge(r.opts.Label, r.opts.Secrets, parts)
	}
	// What was read is kept even if the rest of the pass fails: a new
	// lease must be renewed and revoked like any other, and read again
	// only when its own time comes, not at every retry (each read of
	// database/creds is a new user). The next pass renders it.
	if read {
		r.parts, r.unrendered = parts, true
	}
	if r.out != nil && set == r.set && reflect.DeepEqual(data, r.data) {
		// The common poll: nothing moved in Vault. Rendering is a function
		// of templates and data, so skip it and its garbage.
		r.parts, r.unrendered = parts, false
		return Decision{Action: None, Env: r.out.Env, Output: r.out, Data: r.data}, nil
	}
	out, err := set.Render(data)
	if err == nil && r.opts.Check != nil {
		err = r.opts.Check(out.Env)
	}
	if err != nil {
		return Decision{}, &failure{rendering, err}
	}
	c := Classify(r.data, data, r.out, out, r.opts.HostFields)
	action := Start
	if r.out != nil {
		action = Decide(c, r.opts.RestartOn)
	}
	if action != None {
		if err := r.write(out); err != nil {
			return Decision{}, &failure{writing, err}
		}
	}
	r.set, r.data, r.out, r.parts, r.unrendered = set, data, out, parts, false
	return Decision{Action: action, Change: c, Env: out.Env, Output: out, Data: data}, nil
}

// read reads the parts that are due into a copy of the parts, and says
// whether any was.
func (r *Refresher) read(ctx context.Context, due Due) ([]part, bool, error) {
	var idx []int
	for i, p := range r.parts {
		if !p.read || due.Static && p.lease == nil || slices.Contains(due.Leased, i) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return r.parts, false, nil
	}
	refs := make([]vault.Ref, len(idx))
	for j, i := range idx {
		refs[j] = r.opts.Secrets[i]
	}
	secrets, err := r.src.ReadAll(ctx, refs)
	if err != nil {
		return nil, false, err
	}
	parts := slices.Clone(r.parts)
	for j, i := range idx {
		s := secrets[j]
		parts[i] = part{data: s.Data, lease: s.Lease, read: true}
		if s.Lease != nil {
			parts[i].next = planFor(s.Lease, false)
		}
	}
	return parts, true, nil
}

// merge is the template data: each secret under its name, its parts
// merged in order (later keys win), and AION_ENV.
func merge(label string, refs []vault.Ref, parts []part) render.Data {
	data := render.Data{render.EnvKey: label}
	for i, ref := range refs {
		prev, ok := data[ref.Name].(map[string]any)
		if !ok {
			data[ref.Name] = parts[i].data
			continue
		}
		m := maps.Clone(prev)
		maps.Copy(m, parts[i].data)
		data[ref.Name] = m
	}
	return data
}

// write replaces the file outputs atomically in the render directory,
// created 0700. Files whose bytes are unchanged are not touched.
func (r *Refresher) write(out *render.Output) error {
	if len(out.Files) == 0 {
		return nil
	}
	if err := atomicfile.MkdirPrivate(r.opts.Templates.RenderDir, r.opts.Owner); err != nil {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("write files: %w", err))
	}
	for _, f := range out.Files {
		if _, err := atomicfile.Write(f.Path, f.Data, f.Mode, r.opts.Owner); err != nil {
			return sysexits.Wrap(sysexits.CantCreate, err)
		}
	}
	return nil
}

// Set is the loaded templates, for `check` and the change log.
func (r *Refresher) Set() *render.Set { return r.set }
