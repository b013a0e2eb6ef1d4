package check

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is a Dockerfile as BuildKit parses it: its stages, with the
// variables in ENV, COPY, ADD, WORKDIR and USER expanded as the builder
// expands them (RUN is left to the shell).
type Dockerfile struct {
	Path   string
	Stages []instructions.Stage
}

// ParseDockerfile reads and parses a Dockerfile.
func ParseDockerfile(p string) (*Dockerfile, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("parse Dockerfile: %w", err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("parse %s: no FROM", p)
	}
	var global []string
	for _, a := range metaArgs {
		global = appendArgs(global, &a)
	}
	lex := shell.NewLex(res.EscapeToken)
	for i := range stages {
		if err := expand(lex, &stages[i], global); err != nil {
			return nil, fmt.Errorf("parse %s: stage %d: %w", p, i, err)
		}
	}
	return &Dockerfile{Path: p, Stages: stages}, nil
}

// appendArgs adds an ARG's defaults to env.
func appendArgs(env []string, a *instructions.ArgCommand) []string {
	for _, kv := range a.Args {
		if kv.Value != nil {
			env = append(env, kv.Key+"="+*kv.Value)
		}
	}
	return env
}

// expand replaces variables in a stage's commands with the values the
// stage's ARG defaults and ENV give them, in order.
func expand(lex *shell.Lex, st *instructions.Stage, env []string) error {
	env = append([]string(nil), env...)
	for _, c := range st.Commands {
		switch c.(type) {
		case *instructions.EnvCommand, *instructions.CopyCommand, *instructions.AddCommand,
			*instructions.WorkdirCommand, *instructions.UserCommand, *instructions.ArgCommand:
			err := c.(instructions.SupportsSingleWordExpansion).Expand(func(word string) (string, error) {
				s, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(env))
				return s, err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
		}
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		case *instructions.ArgCommand:
			env = appendArgs(env, c)
		}
	}
	return nil
}

// Final is the last stage, the image.
func (d *Dockerfile) Final() *instructions.Stage {
	return &d.Stages[len(d.Stages)-1]
}

// ImageFiles maps each path that the final stage copies from the build
// context (its destination in the image, absolute) to its source on this
// machine.
func (d *Dockerfile) ImageFiles(context string) map[string]string {
	out := map[string]string{}
	workdir := "/"
	for _, c := range d.Final().Commands {
		var sd instructions.SourcesAndDest
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			workdir = path.Join(workdir, c.Path)
			continue
		case *instructions.CopyCommand:
			if c.From != "" {
				continue
			}
			sd = c.SourcesAndDest
		case *instructions.AddCommand:
			sd = c.SourcesAndDest
		default:
			continue
		}
		dest := sd.DestPath
		if !path.IsAbs(dest) {
			dest = path.Join(workdir, dest)
		}
		for _, src := range sd.SourcePaths {
			to := dest
			if len(sd.SourcePaths) > 1 || sd.DestPath[len(sd.DestPath)-1] == '/' {
				to = path.Join(dest, path.Base(src))
			}
			out[to] = filepath.Join(context, src)
		}
	}
	return out
}

// ImageEnv is the ENV of the final stage.
func (d *Dockerfile) ImageEnv() map[string]string {
	out := map[string]string{}
	for _, c := range d.Final().Commands {
		if e, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				out[kv.Key] = kv.Value
			}
		}
	}
	return out
}

// Entrypoint is the final stage's ENTRYPOINT; shell is true for the shell
// form, which runs it under /bin/sh -c.
func (d *Dockerfile) Entrypoint() (argv []string, shell bool) {
	for _, c := range d.Final().Commands {
		if e, ok := c.(*instructions.EntrypointCommand); ok {
			argv, shell = e.CmdLine, e.PrependShell
		}
	}
	return argv, shell
}
