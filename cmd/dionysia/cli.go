package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// The client commands (`inputs`, `profiles`, `nodes`, `cluster`, `status`)
// share this plumbing: global flags, argument parsing, exit codes.
//
// Exit codes: 0 success, 1 the server refused or could not be reached,
// 2 the command line is wrong (nothing was sent).

// usageError is a wrong command line. An empty msg means the flag package
// has already explained it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// subcommand is one verb of a command group, e.g. `inputs create`.
type subcommand struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string
	run     func(c *cli, args []string) error
}

// cli is one invocation of a client command.
type cli struct {
	name   string // "dionysia inputs create", for messages
	stdout io.Writer
	stderr io.Writer
	fs     *flag.FlagSet
	addr   string
	token  string
	asJSON bool
	client *client
}

func newCLI(name, argsUsage, summary string, stdout, stderr io.Writer) *cli {
	c := &cli{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.addr, "addr", envOr("addr", defaultAddr), "API address of any node (env DIONYSIA_ADDR)")
	// No default shown for the token: -h must not print a secret.
	c.fs.StringVar(&c.token, "token", "", "API token, sent as Authorization: Bearer (env DIONYSIA_API_TOKEN)")
	c.fs.BoolVar(&c.asJSON, "json", false, "print the server's JSON instead of a table")
	c.fs.Usage = func() {
		out := c.fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n%s\n\nFlags:\n", strings.TrimSpace(name+" [flags] "+argsUsage), summary)
		c.fs.PrintDefaults()
	}
	return c
}

// parse reads flags and positional arguments in any order (`inputs get ID
// --json` works as well as `inputs get --json ID`), checks the number of
// positional arguments against names, and makes the client.
func (c *cli) parse(args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{} // the flag package printed why
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		// After "--" everything is positional.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < len(names) {
		return nil, usagef("missing %s", strings.Join(names[len(pos):], " "))
	}
	if len(pos) > len(names) {
		return nil, usagef("unexpected argument %q", pos[len(names)])
	}
	for i, p := range pos {
		if strings.TrimSpace(p) == "" {
			return nil, usagef("%s is empty", names[i])
		}
	}
	if !c.isSet("token") {
		if t, ok := os.LookupEnv("DIONYSIA_API_TOKEN"); ok {
			c.token = t
		}
	}
	// A node takes a comma-separated list of tokens (its env twin is the
	// same variable): any one of them authenticates.
	if list := splitList(c.token); len(list) > 0 {
		c.token = list[0]
	}
	cl, err := newClient(c.addr, c.token)
	if err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	c.client = cl
	return pos, nil
}

// isSet tells whether a flag was given on the command line.
func (c *cli) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// exit prints err the way a user should see it and returns the exit code.
func (c *cli) exit(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.msg != "" {
			fmt.Fprintf(c.stderr, "%s: %s\nRun '%s -h' for usage.\n", c.name, ue.msg, c.name)
		}
		return 2
	}
	fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err)
	return 1
}

// listed is how every list command starts: no arguments, GET path into
// out; with --json the answer is printed as it came and done is true.
func (c *cli) listed(args []string, path string, out any) (done bool, err error) {
	if _, err := c.parse(args); err != nil {
		return false, err
	}
	raw, err := c.client.getJSON(c.ctx(), path, out)
	if err != nil {
		return false, err
	}
	if c.asJSON {
		return true, c.printJSON(raw)
	}
	return false, nil
}

// printJSON writes the server's answer as it came.
func (c *cli) printJSON(raw []byte) error {
	if _, err := c.stdout.Write(raw); err != nil {
		return err
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		_, err := io.WriteString(c.stdout, "\n")
		return err
	}
	return nil
}

func (c *cli) ctx() context.Context { return context.Background() }

// runGroup dispatches `dionysia <group> <verb> ...`.
func runGroup(group, summary string, subs []subcommand, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "%s\n\nUsage:\n", summary)
		for _, s := range subs {
			fmt.Fprintf(w, "  dionysia %s %-10s %-8s  %s\n", group, s.name, s.args, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'dionysia %s <command> -h' for the flags of one command.\n", group)
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, s := range subs {
		if s.name == args[0] {
			return runOne("dionysia "+group+" "+s.name, s, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "dionysia %s: unknown command %q\n\n", group, args[0])
	usage(stderr)
	return 2
}

// runOne runs a single client command (a verb of a group, or a top-level
// command such as `nodes`).
func runOne(name string, s subcommand, args []string, stdout, stderr io.Writer) int {
	c := newCLI(name, s.args, s.summary, stdout, stderr)
	return c.exit(s.run(c, args))
}

// yesNo prints a bool for people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// sortedPairs renders a map as "k=v k=v" in key order.
func sortedPairs(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}
