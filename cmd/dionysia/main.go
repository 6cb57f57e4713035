// Command dionysia runs a Dionysia node (`dionysia node`) and talks to one.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `dionysia — live streaming over a cluster of identical nodes

Usage:
  dionysia node [flags]          start a node (every flag has a DIONYSIA_<FLAG> environment twin)
  dionysia inputs <command>      create|list|get|update|delete|rotate-key inputs
  dionysia profiles <command>    create|list|get|update|delete transcoding profiles
  dionysia webhooks <command>    add|list|rm|deliveries webhooks (signed event notifications)
  dionysia nodes                 the cluster's members
  dionysia cluster               raft leader, raft servers and members
  dionysia status <input>        whether an input is live, where, and its transcoder stats
  dionysia help                  this text

Client commands talk to any node's API: --addr (env DIONYSIA_ADDR, default
http://127.0.0.1:8080), --token (env DIONYSIA_API_TOKEN), --json for the
server's JSON instead of tables. Exit status: 0 ok, 1 refused by the server or
unreachable, 2 wrong command line.

Run 'dionysia node -h' for the node's flags, 'dionysia inputs help' and
'dionysia profiles help' for their commands.
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
	case "inputs", "input":
		return runInputs(args[1:], stdout, stderr)
	case "profiles", "profile":
		return runProfiles(args[1:], stdout, stderr)
	case "webhooks", "webhook":
		return runWebhooks(args[1:], stdout, stderr)
	case "nodes":
		return runNodes(args[1:], stdout, stderr)
	case "cluster":
		return runCluster(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dionysia: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
