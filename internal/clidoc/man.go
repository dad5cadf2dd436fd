package clidoc

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/odohd/odoh/internal/cli"
)

// Page is a manual page.
type Page struct {
	// Command is the program; its subcommands get a section each.
	Command *Command
	// Section is the manual section: 1 for user commands, 8 for daemons.
	Section int
	// SeeAlso names related pages ("odoh-proxy(8)").
	SeeAlso []string
}

// Man writes p in man(7) format. The page carries no date, so that it
// changes only when the flags or texts do.
func Man(w io.Writer, p Page) {
	c := p.Command
	var b strings.Builder
	fmt.Fprintf(&b, ".\\\" Generated from the flag definitions of %s (internal/clidoc); do not edit.\n", c.Name)
	fmt.Fprintf(&b, ".TH %s %d \"\" \"odoh\" \"odoh manual\"\n", strings.ToUpper(esc(c.Name)), p.Section)
	b.WriteString(".SH NAME\n" + esc(c.Name) + " \\- " + esc(c.Summary) + "\n")
	b.WriteString(".SH SYNOPSIS\n")
	lines := append([]string(nil), c.Usage...)
	for _, sub := range c.Commands {
		for _, u := range sub.Usage {
			if !slices.Contains(lines, u) {
				lines = append(lines, u)
			}
		}
	}
	synopsis(&b, lines)
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, or(c.Description, c.Intro))
	if len(c.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, sub := range c.Commands {
			fmt.Fprintf(&b, ".SS %s\n", quote(c.Name+" "+sub.Name))
			synopsis(&b, sub.Usage)
			paragraphs(&b, or(sub.Description, sub.Intro, sub.Summary+"."))
			options(&b, sub)
		}
	}
	if c.Flags != nil || len(c.Options) > 0 {
		b.WriteString(".SH OPTIONS\n")
		options(&b, c)
	}
	if env := envSection(c); env != "" {
		b.WriteString(".SH ENVIRONMENT\n" + env)
	}
	for _, s := range c.Sections {
		b.WriteString(".SH " + quote(strings.ToUpper(s.Title)) + "\n")
		paragraphs(&b, s.Text)
	}
	var examples []Example
	seen := map[string]bool{}
	for _, cmd := range append([]*Command{c}, c.Commands...) {
		for _, e := range cmd.Examples {
			if !seen[e.Command] {
				seen[e.Command] = true
				examples = append(examples, e)
			}
		}
	}
	if len(examples) > 0 {
		b.WriteString(".SH EXAMPLES\n")
		for _, e := range examples {
			if e.Comment != "" {
				b.WriteString(".PP\n" + esc(e.Comment) + ":\n")
			}
			b.WriteString(".PP\n.RS\n.nf\n")
			for i, l := range strings.Split(e.Command, "\n") {
				if i > 0 {
					l = "    " + l
				}
				b.WriteString(escLine(l) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
		}
	}
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		var refs []string
		for _, s := range p.SeeAlso {
			name, sec, ok := strings.Cut(strings.TrimSuffix(s, ")"), "(")
			if ok {
				refs = append(refs, ".BR "+esc(name)+" ("+sec+")")
			} else {
				refs = append(refs, esc(s))
			}
		}
		b.WriteString(strings.Join(refs, " ,\n") + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

func or(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func synopsis(b *strings.Builder, lines []string) {
	b.WriteString(".PP\n.nf\n")
	for _, u := range lines {
		b.WriteString(escLine(u) + "\n")
	}
	b.WriteString(".fi\n")
}

func options(b *strings.Builder, c *Command) {
	for _, fi := range All(c.Flags) {
		b.WriteString(".TP\n")
		if fi.Arg == "" {
			b.WriteString(".B \\-" + esc(fi.Name) + "\n")
		} else {
			b.WriteString(".BI \\-" + esc(fi.Name) + " \" " + esc(fi.Arg) + "\"\n")
		}
		b.WriteString(escLine(fi.Usage+defaultNote(fi)) + "\n")
	}
	for _, o := range c.Options {
		b.WriteString(".TP\n.B " + esc(o.Name) + "\n" + escLine(o.Usage) + "\n")
	}
}

func envSection(c *Command) string {
	vars := map[string]string{} // variable → flag
	for _, cmd := range append([]*Command{c}, c.Commands...) {
		if cmd.EnvPrefix == "" || cmd.Flags == nil {
			continue
		}
		for _, fi := range All(cmd.Flags) {
			vars[cli.EnvName(cmd.EnvPrefix, fi.Name)] = fi.Name
		}
	}
	if len(vars) == 0 {
		return ""
	}
	names := make([]string, 0, len(vars))
	for v := range vars {
		names = append(names, v)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(escLine("Every flag can also be set by an environment variable, which a flag given on the command line overrides; a list takes comma-separated values.") + "\n")
	for _, v := range names {
		b.WriteString(".TP\n.B " + esc(v) + "\n" + escLine("sets -"+vars[v]) + "\n")
	}
	return b.String()
}

// paragraphs writes text: paragraphs separated by blank lines, lines
// starting with two spaces kept as they are.
func paragraphs(b *strings.Builder, text string) {
	for _, para := range strings.Split(text, "\n\n") {
		b.WriteString(".PP\n")
		verbatim := false
		for _, l := range strings.Split(para, "\n") {
			pre := strings.HasPrefix(l, "  ")
			if pre && !verbatim {
				b.WriteString(".nf\n")
			} else if !pre && verbatim {
				b.WriteString(".fi\n")
			}
			verbatim = pre
			b.WriteString(escLine(l) + "\n")
		}
		if verbatim {
			b.WriteString(".fi\n")
		}
	}
}

// esc escapes text for troff: backslashes, dashes as minus signs (so
// that flags copy and paste as typed), and characters beyond ASCII as
// groff's \[uXXXX], which needs no preprocessor.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 127:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escLine escapes a text line, which must not start a request.
func escLine(s string) string {
	s = esc(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(esc(s), `"`, `\(dq`) + `"`
}
