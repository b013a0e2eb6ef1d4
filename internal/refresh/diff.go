package refresh

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/aionos/aion-exec/internal/render"
)

// Change is what differs between two renders, by name only, for the
// decision (restart, reload signal or nothing) and its log line.
type Change struct {
	Secrets []string // names of secrets whose data changed, sorted
	// Fields maps a changed secret to its changed, added or removed keys,
	// sorted. A key is named only if a template or hostFields names it:
	// the keys of some secrets are secrets themselves (gateway API keys),
	// so other keys are only counted in Unnamed.
	Fields       map[string][]string
	Unnamed      map[string]int // secret -> number of changed keys not in Fields
	HostChanged  bool           // a changed key is in hostFields
	EnvChanged   []string       // env var names whose value changed, added or removed, sorted
	FilesChanged []string       // file output names whose bytes changed, added or removed, sorted
}

// Classify compares two renders and the data they came from. A nil oldOut
// means there was no render before. It only reads its arguments.
func Classify(oldData, newData render.Data, oldOut, newOut *render.Output, hostFields []string) Change {
	c := Change{Fields: map[string][]string{}, Unnamed: map[string]int{}}
	if oldOut == nil {
		oldOut = &render.Output{}
	}
	if newOut == nil {
		newOut = &render.Output{}
	}
	host := map[string]bool{}
	for _, f := range hostFields {
		host[f] = true
	}
	named := func(key string) bool { return host[key] || oldOut.Names(key) || newOut.Names(key) }

	for _, name := range union(oldData, newData) {
		if name == render.EnvKey || reflect.DeepEqual(oldData[name], newData[name]) {
			continue
		}
		c.Secrets = append(c.Secrets, name)
		oldSecret, _ := oldData[name].(map[string]any)
		newSecret, _ := newData[name].(map[string]any)
		for _, key := range union(oldSecret, newSecret) {
			if reflect.DeepEqual(oldSecret[key], newSecret[key]) {
				continue
			}
			c.HostChanged = c.HostChanged || host[key]
			if named(key) {
				c.Fields[name] = append(c.Fields[name], key)
			} else {
				c.Unnamed[name]++
			}
		}
	}

	oldEnv, newEnv := envMap(oldOut.Env), envMap(newOut.Env)
	for _, name := range union(oldEnv, newEnv) {
		o, inOld := oldEnv[name]
		n, inNew := newEnv[name]
		if o != n || inOld != inNew {
			c.EnvChanged = append(c.EnvChanged, name)
		}
	}
	oldFiles, newFiles := fileMap(oldOut.Files), fileMap(newOut.Files)
	for _, name := range union(oldFiles, newFiles) {
		o, inOld := oldFiles[name]
		n, inNew := newFiles[name]
		if inOld != inNew || !bytes.Equal(o, n) {
			c.FilesChanged = append(c.FilesChanged, name)
		}
	}
	return c
}

// union is the sorted keys of a and b.
func union[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		m[name] = value
	}
	return m
}

func fileMap(files []render.File) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		m[f.Name] = f.Data
	}
	return m
}

// Empty reports whether nothing rendered changed, in which case the child
// must not be disturbed even if secret data changed.
func (c Change) Empty() bool {
	return len(c.EnvChanged) == 0 && len(c.FilesChanged) == 0
}

// String is a log line naming what changed, such as
// "secret db changed [password]; env [DATABASE_URL PGPASSWORD]".
func (c Change) String() string {
	var parts []string
	for _, name := range c.Secrets {
		keys := slices.Clone(c.Fields[name])
		if n := c.Unnamed[name]; n > 0 {
			other := ""
			if len(keys) > 0 {
				other = "other "
			}
			plural := "s"
			if n == 1 {
				plural = ""
			}
			keys = append(keys, fmt.Sprintf("%d %skey%s", n, other, plural))
		}
		parts = append(parts, fmt.Sprintf("secret %s changed [%s]", name, strings.Join(keys, " ")))
	}
	if len(c.EnvChanged) > 0 {
		parts = append(parts, fmt.Sprintf("env [%s]", strings.Join(c.EnvChanged, " ")))
	}
	if len(c.FilesChanged) > 0 {
		parts = append(parts, fmt.Sprintf("files [%s]", strings.Join(c.FilesChanged, " ")))
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// Action is what a change asks of the child.
type Action int

const (
	None    Action = iota // nothing rendered changed
	Start                 // the first render: start the child
	Reload                // send the reload signal (may be "none")
	Restart               // stop and start with the new environment
)

func (a Action) String() string {
	return [...]string{"nothing", "start", "reload", "restart"}[a]
}

// Decide is the contract's rule, pure: RESTART_ON=host restarts on a host
// field change, env on any environment change, never never; any other
// rendered change reloads.
func Decide(c Change, restartOn string) Action {
	if c.Empty() {
		return None
	}
	switch restartOn {
	case "host":
		if c.HostChanged {
			return Restart
		}
	case "env":
		if len(c.EnvChanged) > 0 {
			return Restart
		}
	}
	return Reload
}
