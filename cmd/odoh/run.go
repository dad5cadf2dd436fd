package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
)

// exitError carries an exit status: 1 for a failed lookup, 2 for a usage
// error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{2, fmt.Errorf(format, a...)}
}

// env is what a subcommand runs with.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	// cmd is the subcommand's documentation, for its usage hint.
	cmd *clidoc.Command
}

// subcommand is one of odoh's commands: its documentation (with the flags
// it defines) and what it runs with the positional arguments left.
type subcommand struct {
	doc *clidoc.Command
	// parse, if set, parses the command line itself (query's dig
	// syntax); otherwise the flag set parses it, flags and positional
	// arguments in any order.
	parse func(args []string) ([]string, error)
	run   func(e *env, args []string) error
}

// run runs odoh with args and returns its exit status: 0 on an answer
// (NXDOMAIN included), 1 on a failed lookup, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	name := "query"
	if len(args) > 0 {
		if _, ok := cmds[args[0]]; ok {
			name, args = args[0], args[1:]
		} else if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
			name, args = "version", nil
		} else if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			clidoc.Help(stdout, programDoc(cmds))
			return 0
		}
	}
	if len(args) == 0 && name == "query" {
		clidoc.Help(stderr, programDoc(cmds))
		return 2
	}
	sc := cmds[name]
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, cmd: sc.doc}
	help := helpCommand(sc.doc)
	pos, err := parseArgs(sc, args)
	if err != nil {
		if clidoc.IsHelp(err) {
			clidoc.Help(stdout, sc.doc)
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "odoh: %v; run '%s' for usage\n", ee.err, help)
		} else {
			clidoc.FlagError(stderr, "odoh", sc.doc.Flags, err, help)
		}
		return 2
	}
	if err := sc.run(e, pos); err != nil {
		return report(stderr, err, help)
	}
	return 0
}

// report prints a subcommand's error, with the hints that say what to do,
// and returns the exit status.
func report(stderr io.Writer, err error, help string) int {
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	hs := hints(err)
	var b strings.Builder
	// The odoh package's errors start "odoh: " too, which after the
	// program's name would read "odoh: static configs: odoh: malformed".
	msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), ": odoh: ", ": "), "odoh: ")
	b.WriteString("odoh: " + msg)
	if code == 2 && len(hs) == 0 {
		b.WriteString("; run '" + help + "' for usage")
	}
	b.WriteString("\n")
	for _, h := range hs {
		b.WriteString("odoh: " + h + "\n")
	}
	_, _ = io.WriteString(stderr, b.String())
	return code
}

func helpCommand(c *clidoc.Command) string {
	if c.Name == "query" {
		return "odoh -h"
	}
	return "odoh " + c.Name + " -h"
}

// parseArgs parses a subcommand's command line: its flags, then the
// environment for the flags not given (ODOH_<FLAG>), and returns the
// positional arguments.
func parseArgs(sc *subcommand, args []string) ([]string, error) {
	fs := sc.doc.Flags
	var pos []string
	if sc.parse != nil {
		var err error
		if pos, err = sc.parse(args); err != nil {
			return nil, err
		}
	} else if fs != nil {
		// Flags may follow positional arguments (odoh stamp sdns://… -json).
		for {
			if err := fs.Parse(args); err != nil {
				return nil, err
			}
			if fs.NArg() == 0 {
				break
			}
			pos = append(pos, fs.Arg(0))
			args = fs.Args()[1:]
		}
	} else {
		for _, a := range args {
			if a == "-h" || a == "-help" || a == "--help" {
				return nil, flag.ErrHelp
			}
		}
		pos = args
	}
	if fs != nil && sc.doc.EnvPrefix != "" {
		if err := cli.ApplyEnv(fs, sc.doc.EnvPrefix); err != nil {
			return nil, &exitError{2, err}
		}
	}
	return pos, nil
}

// envPrefix names the environment variables of the flags: ODOH_PROXY,
// ODOH_TARGET, …
const envPrefix = "ODOH"

// newFlagSet returns a subcommand's flag set, silent: run reports its
// errors.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("odoh "+name, flag.ContinueOnError)
	clidoc.Silence(fs)
	return fs
}

func runVersion(e *env, args []string) error {
	if len(args) > 0 {
		return usageErr("version takes no arguments")
	}
	fmt.Fprintln(e.stdout, buildinfo.Read(version).String("odoh"))
	return nil
}
