// Package clidoc writes the documentation of the odoh programs from their
// flag definitions, so that help, manual pages and shell completions say
// what the code does and cannot drift from it:
//
//   - a short help for -h (Help) that fits an 80×24 terminal: the usage
//     lines, a summary, the flags a newcomer needs and examples;
//   - the full flag list (Flags), for "odoh help COMMAND" and -help-all;
//   - a manual page in man(7) format (Man);
//   - bash, zsh and fish completions (Completion).
//
// A Command describes one program or subcommand around its flag.FlagSet;
// each flag's usage string is its documentation, with the argument's name
// in back quotes as flag.UnquoteUsage reads it ("read `FILE`").
//
// It also reports flag errors the way the programs share (FlagError): one
// line naming the mistake, a suggestion when a flag was misspelt, and the
// hint to -h, never the whole usage.
package clidoc

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/odohd/odoh/internal/cli"
)

// Width is the terminal width the help is written for.
const Width = 80

// ScreenLines is the height of the terminal that a short help must fit.
const ScreenLines = 24

// Command is a program, or one of its subcommands, as its documentation
// shows it.
type Command struct {
	// Name is the program's name ("odoh-target") or the subcommand's
	// ("query").
	Name string
	// Usage are the synopsis lines without "Usage: ", such as
	// "odoh query [options] NAME [TYPE]".
	Usage []string
	// Summary is one line saying what the command does (man NAME line,
	// completion descriptions).
	Summary string
	// Intro is the short help's few lines under the usage, wrapped.
	Intro string
	// Description is the manual page's description: paragraphs separated
	// by blank lines; lines starting with two spaces are kept as they are
	// (lists, commands). Empty: Intro.
	Description string
	// Flags are the command's flags; nil for none.
	Flags *flag.FlagSet
	// Brief names the flags (and +options) that the short help shows, in
	// its order; the others are in the full list and the manual.
	Brief []string
	// Short gives the short help a shorter text for some of them, by
	// name; the others show their usage string.
	Short map[string]string
	// Options are further words the command takes, listed as flags are
	// (dig's +options, say): shown in the manual and completed.
	Options []Option
	// Words are positional words worth completing (record types).
	Words []string
	// Values lists the values a flag takes, by flag name, for completion
	// ("log-level": debug, info, …). A flag whose argument is named FILE
	// (or ends in FILE) completes file names.
	Values map[string][]string
	// Examples are shown in the short help and the manual.
	Examples []Example
	// More is the short help's last line, saying where the rest is.
	More string
	// EnvPrefix names the flags' environment variables (cli.EnvName);
	// empty: none.
	EnvPrefix string
	// Commands are the subcommands, for a program that has them.
	Commands []*Command
	// Sections are more manual sections (title, paragraphs), after the
	// options and the environment.
	Sections []Section
}

// Option is a word documented like a flag, such as dig's "+short".
type Option struct {
	// Name is the word as typed ("+short", "+time=N").
	Name string
	// Usage says what it does.
	Usage string
}

// Example is a command line with what it does.
type Example struct {
	// Comment says what the command does (one line).
	Comment string
	// Command is the command line; lines after the first are indented.
	Command string
	// ManOnly keeps the example out of the short help: the manual shows
	// it.
	ManOnly bool
}

// Section is a manual section: a title and its text, formatted as
// Command.Description is.
type Section struct {
	Title string
	Text  string
}

// FlagInfo is what the documentation shows of one flag.
type FlagInfo struct {
	// Name is the flag's name without the dash.
	Name string
	// Arg is its argument's name ("FILE"), empty for a boolean flag.
	Arg string
	// Usage is its usage string without the back quotes.
	Usage string
	// Default is its default value when it is worth showing (not empty,
	// false or 0).
	Default string
}

// Flag returns the documentation of the flag name of fs, which must exist.
func Flag(fs *flag.FlagSet, name string) FlagInfo {
	f := fs.Lookup(name)
	if f == nil {
		panic("clidoc: no flag -" + name)
	}
	return info(f)
}

func info(f *flag.Flag) FlagInfo {
	arg, usage := flag.UnquoteUsage(f)
	if isBool(f) {
		arg = ""
	} else if arg == "value" || arg == "string" {
		arg = "VALUE"
	} else if arg == "duration" {
		arg = "D"
	} else if arg == "int" || arg == "uint" || arg == "float" {
		arg = "N"
	}
	def := f.DefValue
	switch def {
	case "", "false", "0", "0s", "[]":
		def = ""
	}
	return FlagInfo{Name: f.Name, Arg: arg, Usage: usage, Default: def}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// All returns the documentation of every flag of fs in name order.
func All(fs *flag.FlagSet) []FlagInfo {
	var out []FlagInfo
	if fs == nil {
		return out
	}
	fs.VisitAll(func(f *flag.Flag) { out = append(out, info(f)) })
	return out
}

// Help writes c's short help: usage, intro, the Brief flags, examples and
// More. It fits Width columns; the programs' tests check that it fits
// ScreenLines lines too.
func Help(w io.Writer, c *Command) {
	var b strings.Builder
	for i, u := range c.Usage {
		if i == 0 {
			b.WriteString("Usage: " + u + "\n")
		} else {
			b.WriteString("       " + u + "\n")
		}
	}
	if c.Intro != "" {
		b.WriteString("\n" + Wrap(c.Intro, "", Width) + "\n")
	}
	var rows [][2]string
	for _, name := range c.Brief {
		text, short := c.Short[name]
		if strings.HasPrefix(name, "+") || strings.Contains(name, " ") {
			for _, o := range c.Options {
				if o.Name == name && !short {
					text = o.Usage
				}
			}
			rows = append(rows, [2]string{name, text})
			continue
		}
		fi := Flag(c.Flags, name)
		if !short {
			text = fi.Usage
		}
		text += defaultNote(fi)
		rows = append(rows, [2]string{flagTerm(fi), text})
	}
	if len(rows) > 0 {
		b.WriteString("\n" + table(rows))
	}
	rows = rows[:0]
	for _, sub := range c.Commands {
		rows = append(rows, [2]string{sub.Name, sub.Summary})
	}
	if len(rows) > 0 {
		b.WriteString("\nCommands:\n" + table(rows))
	}
	var examples []Example
	for _, e := range c.Examples {
		if !e.ManOnly {
			examples = append(examples, e)
		}
	}
	if len(examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range examples {
			b.WriteString(exampleLines(e, "  "))
		}
	}
	if c.More != "" {
		b.WriteString("\n" + Wrap(c.More, "", Width) + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// Flags writes every flag of c, one entry each, wrapped to Width: the
// full reference a terminal can show.
func Flags(w io.Writer, c *Command) {
	var b strings.Builder
	for _, fi := range All(c.Flags) {
		b.WriteString("  " + flagTerm(fi) + "\n")
		b.WriteString(Wrap(fi.Usage+defaultNote(fi)+envNote(c, fi), "        ", Width) + "\n")
	}
	for _, o := range c.Options {
		b.WriteString("  " + o.Name + "\n")
		b.WriteString(Wrap(o.Usage, "        ", Width) + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

func flagTerm(fi FlagInfo) string {
	if fi.Arg == "" {
		return "-" + fi.Name
	}
	return "-" + fi.Name + " " + fi.Arg
}

func defaultNote(fi FlagInfo) string {
	if fi.Default == "" {
		return ""
	}
	return " (default " + fi.Default + ")"
}

func envNote(c *Command, fi FlagInfo) string {
	if c.EnvPrefix == "" {
		return ""
	}
	return " [$" + cli.EnvName(c.EnvPrefix, fi.Name) + "]"
}

// table lays out rows of a term and its text: terms in a column as wide
// as the longest (at most 22), texts wrapped beside them; a longer term
// gets its text on the next line.
func table(rows [][2]string) string {
	const maxTerm = 22
	col := 0
	for _, r := range rows {
		if n := len(r[0]); n <= maxTerm && n > col {
			col = n
		}
	}
	indent := strings.Repeat(" ", 2+col+2)
	var b strings.Builder
	for _, r := range rows {
		text := Wrap(r[1], indent, Width)
		if len(r[0]) > col {
			b.WriteString("  " + r[0] + "\n" + text + "\n")
			continue
		}
		b.WriteString("  " + r[0] + strings.Repeat(" ", col-len(r[0])+2) + strings.TrimPrefix(text, indent) + "\n")
	}
	return b.String()
}

func exampleLines(e Example, indent string) string {
	var b strings.Builder
	if e.Comment != "" {
		b.WriteString(indent + "# " + e.Comment + "\n")
	}
	for i, l := range strings.Split(e.Command, "\n") {
		if i > 0 {
			l = "    " + l
		}
		b.WriteString(indent + l + "\n")
	}
	return b.String()
}

// Wrap fills text into lines of at most width columns, each starting
// with indent, breaking at spaces (a word longer than a line stays whole).
// Lines of text that start with two spaces are kept as they are; blank
// lines separate paragraphs.
func Wrap(text, indent string, width int) string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		var lines []string
		var words []string
		flush := func() {
			if len(words) == 0 {
				return
			}
			line := indent
			for _, wd := range words {
				switch {
				case line == indent:
					line += wd
				case len(line)+1+len(wd) > width:
					lines = append(lines, line)
					line = indent + wd
				default:
					line += " " + wd
				}
			}
			lines = append(lines, line)
			words = nil
		}
		for _, l := range strings.Split(para, "\n") {
			if strings.HasPrefix(l, "  ") {
				flush()
				lines = append(lines, indent+l)
				continue
			}
			words = append(words, strings.Fields(l)...)
		}
		flush()
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// FlagError reports a flag parsing error of the program prog (err from
// flag.FlagSet.Parse with the FlagSet's own output silenced) in one line
// on w, with a suggestion for a misspelt flag of fs and the hint to help.
func FlagError(w io.Writer, prog string, fs *flag.FlagSet, err error, help string) {
	msg := err.Error()
	const undefined = "flag provided but not defined: -"
	if name, ok := strings.CutPrefix(msg, undefined); ok {
		msg = "unknown flag -" + name
		if s := Suggest(fs, name); s != "" {
			msg += " (did you mean -" + s + "?)"
		}
	}
	fmt.Fprintf(w, "%s: %s; run '%s' for usage\n", prog, msg, help)
}

// Suggest returns the flag of fs that name most likely misspells, or "".
func Suggest(fs *flag.FlagSet, name string) string {
	name = strings.TrimLeft(name, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	best, bestD := "", 3
	if len(name) <= 3 {
		bestD = 2
	}
	var prefixed []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			prefixed = append(prefixed, f.Name)
		}
		if d := distance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ErrHelp is returned by Parse for -h; the help was written.
var ErrHelp = flag.ErrHelp

// Silence makes fs report errors only through Parse's result: no usage,
// no message, so that the caller reports them (FlagError).
func Silence(fs *flag.FlagSet) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
}

// IsHelp reports whether err is the flag package's -h.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
