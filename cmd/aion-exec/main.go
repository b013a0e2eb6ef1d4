// Command aion-exec reads secrets from Vault, renders them into environment
// variables and files, and runs a child process with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	// aion-exec's heap is small and mostly garbage from each poll; the
	// default GOGC=100 lets it double before a collection and the process
	// settles near 16 MiB RSS. At 25 it settles near 13.5 MiB (measured
	// with 5 secrets at a 100ms poll); the extra collections cost
	// microseconds. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
}

const usage = `aion-exec: run a process with secrets from HashiCorp Vault

usage:
  aion-exec [flags] -- COMMAND [ARG...]   supervise COMMAND with rendered secrets
  aion-exec once [flags]                   render the file outputs once and exit
  aion-exec env [flags]                    print the rendered environment as export lines
  aion-exec check [flags]                  validate config, auth, secret paths and templates
  aion-exec dev bootstrap [flags]          bootstrap a local Vault for development
  aion-exec version

Every setting is an environment variable; the flag of the same meaning wins.
`

// streams are the process's standard files, passed in so tests can run
// commands in-process.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	st := streams{stdin, stdout, stderr}
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
		if cmd == "dev" {
			if len(args) == 0 || args[0] != "bootstrap" {
				fmt.Fprintln(stderr, "aion-exec: usage: aion-exec dev bootstrap [flags]")
				return sysexits.Usage
			}
			cmd, args = "dev bootstrap", args[1:]
		}
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "aion-exec", buildVersion())
		return 0
	case "", "once", "env", "check", "dev bootstrap":
	default:
		fmt.Fprintf(stderr, "aion-exec: unknown command %q; see aion-exec --help\n", cmd)
		return sysexits.Usage
	}

	env, child, err := parseFlags(cmd, args, environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return report(stderr, err)
	}
	if cmd == "" && len(child) == 0 {
		fmt.Fprintln(stderr, "aion-exec: no command to run; usage: aion-exec [flags] -- COMMAND [ARG...]")
		return sysexits.Usage
	}
	if cmd != "" && len(child) > 0 {
		fmt.Fprintf(stderr, "aion-exec: %s takes no command, got %q\n", cmd, child[0])
		return sysexits.Usage
	}

	cfg, warnings, err := config.Load(env, cmd != "dev bootstrap")
	if err != nil {
		return report(stderr, err)
	}
	log := newLogger(cfg, stderr)
	for _, w := range warnings {
		log.Warn(w)
	}
	// Until a child runs and the supervisor forwards signals, SIGINT and
	// SIGTERM end aion-exec itself, even as PID 1 (where the kernel would
	// otherwise ignore them) and even in the middle of waiting for Vault.
	sctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "once":
		err = once(sctx, cfg, log)
	case "env":
		err = printEnv(sctx, cfg, log, stdout)
	case "check":
		err = check(sctx, cfg, log, stdout)
	case "dev bootstrap":
		err = devBootstrap(sctx, cfg, log, stdout)
	default:
		var code int
		code, err = superviseChild(ctx, sctx, stop, cfg, log, environ, child, st)
		if code != 0 || err == nil {
			// The child's status, or a shell's 126/127 with err saying why.
			if err != nil {
				report(stderr, err)
			}
			return code
		}
	}
	if cause := context.Cause(sctx); cause != nil && cause != context.Canceled && ctx.Err() == nil { // not errors.Is: a signal cause "is" Canceled
		// A signal, not stop(): the shell's 128+N, as if it had ended us.
		fmt.Fprintf(stderr, "aion-exec: stopped before the child started: %v\n", cause)
		if strings.Contains(cause.Error(), "interrupt") {
			return 128 + int(syscall.SIGINT)
		}
		return 128 + int(syscall.SIGTERM)
	}
	return report(stderr, err)
}

// parseFlags overlays the command line on the environment: each setting's
// flag wins over its variable. It returns the merged settings and the child
// command after "--".
func parseFlags(cmd string, args, environ []string, stdout io.Writer) (map[string]string, []string, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	fs := flag.NewFlagSet("aion-exec "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	envOf := map[string]string{} // flag name -> variable
	for _, s := range config.Settings {
		if !s.Secret {
			fs.String(s.Flag(), "", s.Usage)
			envOf[s.Flag()] = s.Env
		}
	}
	var secretFlags secretList
	fs.Var(&secretFlags, "secret", "NAME=PATH")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage, "\nsettings (variable, flag, meaning):\n", config.Help())
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, sysexits.Wrap(sysexits.Usage, err)
	}
	fs.Visit(func(f *flag.Flag) {
		if name, ok := envOf[f.Name]; ok {
			env[name] = f.Value.String()
		}
	})
	for _, s := range secretFlags {
		env[s[0]] = s[1]
	}
	return env, fs.Args(), nil
}

var secretNameRE = regexp.MustCompile(`^[A-Z0-9_]+$`)

// secretList collects --secret NAME=PATH flags as AION_<NAME>_SECRET_PATH.
type secretList [][2]string

func (l *secretList) String() string { return "" }
func (l *secretList) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	name = strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if !ok || !secretNameRE.MatchString(name) || path == "" {
		return fmt.Errorf("want NAME=PATH with NAME of letters, digits, _ or -, got %q", v)
	}
	*l = append(*l, [2]string{"AION_" + name + "_SECRET_PATH", path})
	return nil
}

// report prints err as "aion-exec: ..." lines and returns its exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(stderr, "aion-exec:", line)
	}
	return sysexits.Code(err)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts)).With("prog", "aion-exec")
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
