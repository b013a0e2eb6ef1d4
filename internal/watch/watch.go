// Package watch keeps a rendered configuration current: it re-reads the
// secrets every poll interval (with jitter), re-parses templates when their
// files change (fsnotify), turns each change into one decision (nothing,
// reload signal, restart) and hands that decision on. It owns no child and
// no Vault login; it never logs a value, only secret, field and output names.
package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/render"
)

// Action is what a change asks of the child.
type Action int

const (
	None    Action = iota // nothing rendered changed
	Reload                // send the reload signal (may be "none")
	Restart               // stop and start with the new environment
)

func (a Action) String() string {
	return [...]string{"nothing", "reload", "restart"}[a]
}

// Decide is the contract's rule, pure: RESTART_ON=host restarts on a host
// field change, env on any environment change, never never; any other
// rendered change reloads.
func Decide(c render.Change, restartOn string) Action {
	if c.Empty() {
		return None
	}
	switch restartOn {
	case config.RestartHost:
		if c.HostChanged {
			return Restart
		}
	case config.RestartEnv:
		if len(c.EnvChanged) > 0 {
			return Restart
		}
	}
	return Reload
}

// Loop is one watcher. The function fields are its only ties to the rest of
// aion-exec, so tests drive it without Vault or a child.
type Loop struct {
	Interval   time.Duration
	RestartOn  string
	HostFields []string
	// ReloadName names the reload signal in log lines ("SIGHUP"); empty
	// when no signal is sent.
	ReloadName string
	Log        *slog.Logger

	// Read reads every secret once.
	Read func(ctx context.Context) (render.Data, error)
	// Load parses the templates again.
	Load func() (*render.Set, error)
	// Apply acts on the child after files were written: Restart with env,
	// or Reload.
	Apply func(a Action, env []string)
	// Transient tells a passing Vault failure (retried with backoff) from
	// a lasting one (logged, retried at the next interval).
	Transient func(error) bool

	// TemplatesDir is watched for template edits; CredentialFiles (token
	// and secret-ID files) for rotation, which sends on Reauth.
	TemplatesDir    string
	CredentialFiles []string
	Reauth          chan<- struct{}

	// Changed, when set, learns of every change applied (for tests).
	Changed func(render.Change, Action)
}

// state is the last good render.
type state struct {
	set  *render.Set
	data render.Data
	out  *render.Output
}

// debounce gathers a burst of file events (an editor's write, rename and
// chmod; a ConfigMap's symlink swap) into one re-render.
const debounce = 50 * time.Millisecond

// Run watches until ctx ends. set, data and out are what the child was
// started with.
func (l *Loop) Run(ctx context.Context, set *render.Set, data render.Data, out *render.Output) error {
	st := state{set, data, out}
	fw, err := l.fileWatcher()
	if err != nil {
		return err
	}
	var fsEvents <-chan fsnotify.Event
	var fsErrors <-chan error
	if fw != nil {
		defer fw.Close()
		fsEvents, fsErrors = fw.Events, fw.Errors
	}

	poll := time.NewTimer(l.jittered())
	defer poll.Stop()
	var settle *time.Timer // debounce of file events
	var settleC <-chan time.Time
	var tmplDirty, credDirty bool

	degraded := ""     // the failure we are in, logged once
	renderFailed := "" // the template failure we are in, logged once
	b := backoff.Backoff{Min: time.Second, Max: l.Interval}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			// The next poll is timed from this one's start, so a slow read
			// does not stretch the interval.
			started := time.Now()
			next := func(d time.Duration) { poll.Reset(max(0, d-time.Since(started))) }
			data, err := l.Read(ctx)
			l.Log.Debug("polled", "ok", err == nil, "goroutines", runtime.NumGoroutine())
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if msg := err.Error(); msg != degraded {
					l.Log.Warn("vault read failed; the child keeps running on the last good render", "err", err)
					degraded = msg
				}
				wait := l.jittered()
				if l.Transient == nil || l.Transient(err) {
					wait = b.Next()
				}
				next(wait)
				continue
			}
			if degraded != "" {
				l.Log.Info("vault read recovered")
				degraded = ""
			}
			b.Reset()
			l.update(&st, st.set, data, &renderFailed)
			next(l.jittered())
		case ev := <-fsEvents:
			// Any event in the templates directory counts: a ConfigMap
			// update shows only as a swap of its ..data symlink.
			if l.isCredential(ev.Name) {
				credDirty = true
			} else if filepath.Dir(ev.Name) == filepath.Clean(l.TemplatesDir) {
				tmplDirty = true
			}
			if settle == nil {
				settle = time.NewTimer(debounce)
				settleC = settle.C
			} else {
				settle.Reset(debounce)
			}
		case err := <-fsErrors:
			l.Log.Warn("file watch error", "err", err)
		case <-settleC:
			settle, settleC = nil, nil
			if credDirty {
				credDirty = false
				l.Log.Info("credential file changed; logging in again")
				select {
				case l.Reauth <- struct{}{}:
				default: // a re-login is already pending
				}
			}
			if tmplDirty {
				tmplDirty = false
				set, err := l.Load()
				if err != nil {
					if msg := err.Error(); msg != renderFailed {
						l.Log.Error("templates changed but do not load; keeping the last good outputs", "err", err)
						renderFailed = msg
					}
					continue
				}
				l.update(&st, set, st.data, &renderFailed)
			}
		}
	}
}

// update renders data with set and, when the output changed, writes files,
// then acts. A failure keeps the last good state and is logged once.
func (l *Loop) update(st *state, set *render.Set, data render.Data, failed *string) {
	if set == st.set && reflect.DeepEqual(data, st.data) {
		// The common poll: nothing moved in Vault. Rendering is a function
		// of templates and data, so skip it and its garbage.
		return
	}
	out, err := set.Render(data)
	if err != nil {
		if msg := err.Error(); msg != *failed {
			l.Log.Error("render failed; keeping the last good outputs", "err", err)
			*failed = msg
		}
		return
	}
	if *failed != "" {
		l.Log.Info("render recovered")
		*failed = ""
	}
	c := render.Classify(st.data, data, st.out, out, l.HostFields)
	st.set, st.data = set, data
	if c.Empty() {
		st.out = out
		return
	}
	if _, err := out.WriteFiles(); err != nil {
		l.Log.Error("write rendered files failed; the child is not signalled", "err", err)
		return
	}
	st.out = out
	a := Decide(c, l.RestartOn)
	what := a.String()
	if a == Reload {
		what = cmp.Or(l.ReloadName, "no signal (AION_RELOAD_SIGNAL=none)")
	}
	l.Log.Info(fmt.Sprintf("%s → %s", c, what))
	l.Apply(a, out.Env)
	if l.Changed != nil {
		l.Changed(c, a)
	}
}

func (l *Loop) jittered() time.Duration { return backoff.Jitter(l.Interval) }

func (l *Loop) isCredential(name string) bool {
	for _, f := range l.CredentialFiles {
		if f == "" {
			continue
		}
		if filepath.Clean(name) == filepath.Clean(f) || filepath.Dir(name) == filepath.Dir(f) && filepath.Base(name) == "..data" {
			return true
		}
	}
	return false
}

// fileWatcher watches the directories (not the files: editors and
// Kubernetes replace files by rename, which a file watch loses).
func (l *Loop) fileWatcher() (*fsnotify.Watcher, error) {
	var dirs []string
	if l.TemplatesDir != "" {
		dirs = append(dirs, l.TemplatesDir)
	}
	for _, f := range l.CredentialFiles {
		if f != "" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watcher: %w", err)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil && !errors.Is(err, os.ErrExist) {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
	}
	return w, nil
}
