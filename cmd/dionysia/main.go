// Command dionysia runs a Dionysia node (`dionysia node`) and talks to one.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `dionysia — live streaming over a cluster of identical nodes

Usage:
  dionysia node [flags]      start a node (every flag has a DIONYSIA_<FLAG> environment twin)
  dionysia help              this text

Run 'dionysia node -h' for the node's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "node":
		return runNode(args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dionysia: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
