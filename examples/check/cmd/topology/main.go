// Command topology prints, as JSON on stdout, the deployment examples'
// topology as the integration tests run it with processes: the compose
// services and Kubernetes containers with their commands, environments and
// mounts, and the images the compose file builds (see check.Topology).
//
//	cd examples/check && go run ./cmd/topology [-root DIR]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aionos/aion-exec/examples/check"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "topology:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	root := fs.String("root", "", "the repository's checkout (default: found from the working directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		r, err := check.Root(".")
		if err != nil {
			return err
		}
		*root = r
	}
	t, err := check.ReadTopology(*root)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
