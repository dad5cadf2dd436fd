package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/clidoc"
)

// order is the order in which the help and the manual list the
// subcommands.
var order = []string{"query", "configs", "stamp", "keygen", "stub", "completion", "version", "help"}

// commands returns every subcommand, each with a fresh flag set.
func commands() map[string]*subcommand {
	cmds := map[string]*subcommand{
		"query":   queryCommand(),
		"configs": configsCommand(),
		"stamp":   stampCommand(),
		"keygen":  keygenCommand(),
		"stub":    stubCommand(),
		"version": {doc: &clidoc.Command{
			Name: "version", Usage: []string{"odoh version"},
			Summary: "print the version, the VCS revision and the Go version",
		}, run: runVersion},
		"completion": {doc: &clidoc.Command{
			Name: "completion", Usage: []string{"odoh completion bash|zsh|fish"},
			Summary: "print the shell completion script for bash, zsh or fish",
			Intro:   "Prints a completion script generated from the flag definitions.",
			Examples: []clidoc.Example{
				{Comment: "bash, for this shell", Command: "source <(odoh completion bash)"},
				{Comment: "zsh, for every shell", Command: `odoh completion zsh > "${fpath[1]}/_odoh"`},
				{Comment: "fish", Command: "odoh completion fish > ~/.config/fish/completions/odoh.fish"},
			},
		}},
		"help": {doc: &clidoc.Command{
			Name: "help", Usage: []string{"odoh help [COMMAND]"},
			Summary: "print the help, or every flag of COMMAND",
		}},
	}
	cmds["completion"].run = func(e *env, args []string) error {
		if len(args) != 1 {
			return usageErr("completion wants one shell: %s", strings.Join(clidoc.Shells, ", "))
		}
		if err := clidoc.Completion(e.stdout, args[0], programDoc(cmds), "query"); err != nil {
			return &exitError{2, err}
		}
		return nil
	}
	cmds["help"].run = func(e *env, args []string) error {
		switch len(args) {
		case 0:
			clidoc.Help(e.stdout, programDoc(cmds))
			return nil
		case 1:
			sc, ok := cmds[args[0]]
			if !ok {
				return usageErr("no command %q: the commands are %s", args[0], strings.Join(order, ", "))
			}
			writeFullHelp(e.stdout, sc.doc)
			return nil
		}
		return usageErr("help takes at most one command")
	}
	return cmds
}

// writeFullHelp is "odoh help COMMAND": the usage, the intro, every flag
// and option, and the examples.
func writeFullHelp(w io.Writer, c *clidoc.Command) {
	short := *c
	short.Brief, short.Examples, short.More = nil, nil, ""
	clidoc.Help(w, &short)
	if c.Flags != nil || len(c.Options) > 0 {
		fmt.Fprintln(w, "\nFlags and options:")
		clidoc.Flags(w, c)
	}
	if len(c.Examples) > 0 {
		ex := clidoc.Command{Examples: c.Examples}
		clidoc.Help(w, &ex)
	}
}

// programDoc is the documentation of odoh itself, with its subcommands.
func programDoc(cmds map[string]*subcommand) *clidoc.Command {
	c := &clidoc.Command{
		Name: "odoh",
		Usage: []string{
			"odoh [query] [@PROXY] [options] NAME [TYPE...] [CLASS] [+option...]",
			"odoh COMMAND [options]",
		},
		Summary: "private DNS lookups through Oblivious DNS over HTTPS (RFC 9230)",
		Intro: "Looks names up through an oblivious proxy (relay) to a target, so that the proxy " +
			"learns who asks but not what, and the target what is asked but not by whom.",
		Description: programDescription,
		Examples: []clidoc.Example{
			{Command: "odoh -proxy relay.example -target odoh.example example.com AAAA"},
			{Command: "odoh stub -listen 127.0.0.1:53 -proxy relay.example -target odoh.example"},
		},
		More:      "Run 'odoh COMMAND -h' for a command's usage, 'odoh help COMMAND' for all its flags, or see odoh(1).",
		EnvPrefix: envPrefix,
		Sections: []clidoc.Section{
			{Title: "Exit status", Text: "0 when an answer came (NXDOMAIN and SERVFAIL included), 1 when a lookup or another command failed, 2 for a usage error."},
		},
	}
	for _, name := range order {
		c.Commands = append(c.Commands, cmds[name].doc)
	}
	return c
}

const programDescription = `odoh looks DNS names up through Oblivious DNS over HTTPS (RFC 9230): each query is encrypted to the target's public key and sent through a proxy run by someone else, so that the proxy learns who asks but not what, and the target learns what is asked but not by whom.

Without a proxy odoh refuses to run unless -direct is given (the target then sees your address). A proxy and a target with the same registrable domain, or the same IP address, are refused as one operator's unless -allow-same-operator is given (for testing).

Target configs (their public keys) come by default from the target itself in a TLS session tunnelled through the proxy (CONNECT): the proxy cannot forge them, the target never sees your address, and they are checked against the proxy's config relay. -configs-from-target, -configs-via-relay, -config and -config-file choose other sources.

The query command takes the command line of dig(1): names, types and classes in any order after the options, several questions in one run, +options such as +short, +dnssec and +noall +answer, and -x for reverse lookups. Internationalized names are converted to punycode (IDNA, UTS #46).`

// queryCommand is odoh [query]: dig-like lookups.
func queryCommand() *subcommand {
	fs := newFlagSet("query")
	var o clientFlags
	o.add(fs, client.DefaultTimeout)
	var jsonOut bool
	fs.BoolVar(&jsonOut, "json", false, "JSON output: one object per question, on one line each")
	doc := &clidoc.Command{
		Name: "query",
		Usage: []string{
			"odoh [query] [@PROXY] [options] NAME [TYPE...] [CLASS] [+option...]",
			"odoh [query] [options] -x ADDR [+option...]",
		},
		Summary: "look names up, as dig does (the default command)",
		Intro: "Looks each NAME up through the proxy (-proxy or @PROXY) to the target " +
			"(-target), printing the answer as dig does. TYPE defaults to A; several " +
			"names or types make several questions.",
		Flags: fs,
		Brief: []string{"proxy", "target", "direct", "http3", "ca", "json", "-x ADDR", "+short"},
		Short: shortTexts(map[string]string{
			"-x ADDR": "reverse lookup of the address ADDR",
			"+short":  "answers only; also +dnssec +cd +ad +norec +noall +answer …",
		}),
		Options: append(digFlagOptions(), digPlusOptions()...),
		Words:   recordTypes(),
		Values:  logValues,
		Examples: []clidoc.Example{
			{Command: "odoh -proxy relay.example -target odoh.example example.com AAAA"},
			{Command: "ODOH_PROXY=relay.example ODOH_TARGET=odoh.example odoh example.com MX +short"},
			{Command: "odoh -json example.com HTTPS"},
			{Command: "odoh -x 192.0.2.1"},
		},
		More:      "Every option: odoh help query, or odoh(1). Each flag also reads ODOH_<FLAG>.",
		EnvPrefix: envPrefix,
	}
	sc := &subcommand{doc: doc}
	var qa *queryArgs
	sc.parse = func(args []string) ([]string, error) {
		var err error
		qa, err = parseQueryArgs(args, fs)
		if err != nil {
			return nil, err
		}
		if err := fs.Parse(qa.flags); err != nil {
			return nil, digHint(err)
		}
		if fs.NArg() > 0 {
			return nil, usageErr("unexpected %q", fs.Arg(0))
		}
		return nil, nil
	}
	sc.run = func(e *env, _ []string) error {
		return runQuery(e, &o, qa, jsonOut)
	}
	return sc
}

// digHint turns an unknown flag that is one of dig's +options (-dnssec,
// -short) into the error that says so.
func digHint(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err
	}
	var probe digOptions
	if probe.set("+"+name) == nil {
		return usageErr("unknown flag -%s: the DNS options are dig's, written +%s", name, name)
	}
	return err
}

// logValues are the completions of the logging flags.
var logValues = map[string][]string{
	"log-level":  {"debug", "info", "warn", "error"},
	"log-format": {"text", "json"},
}

func digFlagOptions() []clidoc.Option {
	var out []clidoc.Option
	for _, d := range digFlagDocs {
		out = append(out, clidoc.Option{Name: d.name, Usage: d.usage})
	}
	return out
}

func digPlusOptions() []clidoc.Option {
	var out []clidoc.Option
	for _, d := range digOptionDocs {
		out = append(out, clidoc.Option{Name: d.name, Usage: d.usage})
	}
	return out
}

// recordTypes are the types completed after a name: the common ones.
func recordTypes() []string {
	types := []string{"A", "AAAA", "ANY", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NS", "PTR", "SOA", "SRV", "SVCB", "TXT"}
	slices.Sort(types)
	for _, t := range types {
		if _, ok := dns.StringToType[t]; !ok {
			panic("unknown type " + t)
		}
	}
	return types
}
