package kit

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Run runs a command's work with a context that SIGINT and SIGTERM
// cancel, so that it stops what it started before it returns.
func Run(work func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return work(ctx)
}

// Exit ends command name when err is not nil: "name: err" on stderr, exit
// status 1.
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
