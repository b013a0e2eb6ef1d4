// Command aion is aion-exec in miniature for supervise's tests, linked as
// aion-exec is (with supervise.EntrySymbol as its entry): it runs a
// Supervisor for its arguments, with its own environment, and exits with
// Run's status.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aionos/aion-exec/internal/supervise"
)

func main() {
	code, err := supervise.New(supervise.Options{Args: os.Args[1:], Env: os.Environ()}).Run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "aion:", err)
	}
	os.Exit(code)
}
