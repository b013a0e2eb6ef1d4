package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aionos/aion-exec/internal/config"
	"github.com/aionos/aion-exec/internal/supervise"
	"github.com/aionos/aion-exec/internal/sysexits"
)

const usage = `aion-exec: run a process with secrets from HashiCorp Vault

usage:
  aion-exec [flags] -- COMMAND [ARG...]   supervise COMMAND with rendered secrets
  aion-exec once [flags]                   render the file outputs once and exit
  aion-exec env [flags]                    print the rendered environment as export lines
  aion-exec check [flags]                  validate config, auth, secret paths and templates
  aion-exec dev bootstrap [flags]          bootstrap a local Vault for development
  aion-exec version

Every setting is an environment variable; the flag of the same meaning wins.

settings (variable, flag, meaning):
`

// streams are the process's standard files, passed in so tests can run
// commands in-process.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// app is one invocation: its settings, logger and streams, and in the
// supervised mode the child's command, environment and user.
type app struct {
	cfg *config.Config
	log *slog.Logger
	st  streams

	command []string
	environ []string
	user    *supervise.User
}

// run is main without the process: it returns the exit code. The settings
// come from the process environment and args.
func run(ctx context.Context, args []string, st streams) int {
	cmd, args, err := subcommand(args)
	if err != nil {
		return report(st.stderr, err)
	}
	if cmd == "version" {
		fmt.Fprintln(st.stdout, "aion-exec", buildVersion())
		return 0
	}
	cfg, child, err := config.Load(cmd, args, cmd != "dev bootstrap")
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(st.stdout, usage)
		config.Help(st.stdout)
		return 0
	}
	if err != nil {
		return report(st.stderr, err)
	}
	if err := arity(cmd, child); err != nil {
		return report(st.stderr, err)
	}
	a := &app{cfg: cfg, log: newLogger(cfg, st.stderr), st: st}
	for _, w := range cfg.Warnings {
		a.log.Warn(w)
	}
	// Until a child runs and the supervisor forwards signals, SIGINT and
	// SIGTERM end aion-exec itself, even as PID 1 (where the kernel would
	// otherwise ignore them) and even in the middle of waiting for Vault.
	sctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "once":
		err = a.once(sctx)
	case "env":
		err = a.printEnv(sctx)
	case "check":
		err = a.check(sctx)
	case "dev bootstrap":
		err = a.devBootstrap(sctx)
	default:
		var code int
		code, err = a.supervise(ctx, sctx, stop, child)
		if code != 0 || err == nil {
			// The child's status, or a shell's 126/127 with err saying why.
			if err != nil {
				report(st.stderr, err)
			}
			return code
		}
	}
	if code, ok := stoppedEarly(ctx, sctx, st.stderr); ok {
		return code
	}
	return report(st.stderr, err)
}

// stoppedEarly reports a signal (not stop()) that ended a command before
// any child started: the shell's 128+N, as if it had ended us.
func stoppedEarly(ctx, sctx context.Context, stderr io.Writer) (int, bool) {
	cause := context.Cause(sctx)
	if cause == nil || cause == context.Canceled || ctx.Err() != nil { // not errors.Is: a signal cause "is" Canceled
		return 0, false
	}
	fmt.Fprintf(stderr, "aion-exec: stopped before the child started: %v\n", cause)
	if strings.Contains(cause.Error(), "interrupt") {
		return 128 + int(syscall.SIGINT), true
	}
	return 128 + int(syscall.SIGTERM), true
}

// subcommand splits the command word off args.
func subcommand(args []string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", args, nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "dev":
		if len(args) == 0 || args[0] != "bootstrap" {
			return "", nil, sysexits.Wrap(sysexits.Usage, errors.New("usage: aion-exec dev bootstrap [flags]"))
		}
		return "dev bootstrap", args[1:], nil
	case "version", "once", "env", "check":
		return cmd, args, nil
	}
	return "", nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("unknown command %q; see aion-exec --help", cmd))
}

// arity checks that the supervised mode has a command and the others none.
func arity(cmd string, child []string) error {
	if cmd == "" && len(child) == 0 {
		return sysexits.Wrap(sysexits.Usage, errors.New("no command to run; usage: aion-exec [flags] -- COMMAND [ARG...]"))
	}
	if cmd != "" && len(child) > 0 {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("%s takes no command, got %q", cmd, child[0]))
	}
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
	_ = level.UnmarshalText([]byte(cfg.LogLevel.V))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat.V == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts)).With("prog", "aion-exec")
}
