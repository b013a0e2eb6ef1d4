// Package refresh keeps what the child consumes current. One pass reads
// what is due from Vault, renders the templates, compares the result with
// the last render, writes the changed files and returns one decision:
// nothing, start, reload or restart, with what changed. The first start,
// every poll and every template edit run the same pass; Run is the actor
// that triggers it. It knows nothing of the child: the caller acts on the
// decision. It never logs a value, only secret, field and output names.
package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/aionos/aion-exec/internal/atomicfile"
	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// Reader reads secrets; *vault.Client is the real one.
type Reader interface {
	ReadAll(ctx context.Context, refs []vault.Ref) ([]*vault.Secret, error)
}

// Options configure a Refresher.
type Options struct {
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

	// Interval is the poll interval of Run; ReloadName names the reload
	// signal in its log lines ("" when none is sent).
	Interval   time.Duration
	ReloadName string
	Log        *slog.Logger
}

// Due says what a pass reads anew; what is not due comes from the last
// pass.
type Due struct {
	Secrets   bool // re-read every secret
	Templates bool // parse the templates again
}

// All is due at the first pass.
var All = Due{Secrets: true, Templates: true}

// Decision is the outcome of a pass.
type Decision struct {
	Action Action
	Change Change
	Env    []string // the rendered environment, sorted NAME=value
	Output *render.Output
	Data   render.Data // what it was rendered from
}

// Refresher holds the last good render. It is owned by one goroutine.
type Refresher struct {
	opts Options
	src  Reader
	set  *render.Set
	data render.Data
	out  *render.Output
}

// New returns a Refresher that reads through src.
func New(opts Options, src Reader) *Refresher {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Refresher{opts: opts, src: src}
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
	if due.Secrets || data == nil {
		secrets, err := r.src.ReadAll(ctx, r.opts.Secrets)
		if err != nil {
			return Decision{}, &failure{reading, err}
		}
		data = render.Data{render.EnvKey: r.opts.Label}
		for _, s := range secrets {
			data[s.Name] = s.Data
		}
	}
	if r.out != nil && set == r.set && reflect.DeepEqual(data, r.data) {
		// The common poll: nothing moved in Vault. Rendering is a function
		// of templates and data, so skip it and its garbage.
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
	r.set, r.data, r.out = set, data, out
	return Decision{Action: action, Change: c, Env: out.Env, Output: out, Data: data}, nil
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
