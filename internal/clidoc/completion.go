package clidoc

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Shells are the shells Completion writes for.
var Shells = []string{"bash", "zsh", "fish"}

// Completion writes the completion script of program c for shell ("bash",
// "zsh" or "fish"). With subcommands, def names the one a command line
// without any uses ("query" for odoh NAME); "" if none.
func Completion(w io.Writer, shell string, c *Command, def string) error {
	var s string
	switch shell {
	case "bash":
		s = bashCompletion(c, def)
	case "zsh":
		s = zshCompletion(c, def)
	case "fish":
		s = fishCompletion(c, def)
	default:
		return fmt.Errorf("no completion for shell %q: want one of %s", shell, strings.Join(Shells, ", "))
	}
	_, err := io.WriteString(w, s)
	return err
}

// argKind is what follows a flag on the command line.
type argKind int

const (
	argNone   argKind = iota // a boolean flag
	argText                  // a value to type
	argFile                  // a file name
	argChoice                // one of Command.Values
)

func kindOf(c *Command, fi FlagInfo) argKind {
	switch {
	case fi.Arg == "":
		return argNone
	case len(c.Values[fi.Name]) > 0:
		return argChoice
	case strings.HasSuffix(fi.Arg, "FILE") || strings.HasSuffix(fi.Arg, "DIR"):
		return argFile
	}
	return argText
}

// words are what a command completes besides flags' values: its flags,
// options and words.
func words(c *Command) []string {
	var out []string
	for _, fi := range All(c.Flags) {
		out = append(out, "-"+fi.Name)
	}
	for _, o := range c.Options {
		out = append(out, strings.TrimSuffix(o.Name, "N")) // "+time=N" completes as "+time="
	}
	return append(out, c.Words...)
}

// units are the commands completed apart: the subcommands, or the
// program itself.
func units(c *Command) []*Command {
	if len(c.Commands) > 0 {
		return c.Commands
	}
	return []*Command{c}
}

func ident(s string) string { return strings.NewReplacer("-", "_", ".", "_").Replace(s) }

func header(c *Command, comment string) string {
	return comment + " " + c.Name + " completion, generated from its flag definitions (internal/clidoc): do not edit.\n"
}

func bashCompletion(c *Command, def string) string {
	var b strings.Builder
	fn := "_" + ident(c.Name)
	b.WriteString(header(c, "#"))
	b.WriteString(fn + "() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	b.WriteString("\tlocal cmd= i words\n")
	if len(c.Commands) > 0 {
		var names []string
		for _, sub := range c.Commands {
			names = append(names, sub.Name)
		}
		b.WriteString("\tfor ((i = 1; i < COMP_CWORD; i++)); do\n")
		b.WriteString("\t\tcase ${COMP_WORDS[i]} in\n")
		b.WriteString("\t\t" + strings.Join(names, "|") + ") cmd=${COMP_WORDS[i]}; break ;;\n")
		b.WriteString("\t\tesac\n\tdone\n")
		fmt.Fprintf(&b, "\t[[ -z $cmd ]] && cmd=%s\n", def)
	}
	b.WriteString("\tcase $cmd/$prev in\n")
	for _, u := range units(c) {
		key := u.Name
		if u == c {
			key = ""
		}
		var files, text []string
		for _, fi := range All(u.Flags) {
			switch kindOf(u, fi) {
			case argFile:
				files = append(files, key+"/-"+fi.Name)
			case argText:
				text = append(text, key+"/-"+fi.Name)
			case argChoice:
				fmt.Fprintf(&b, "\t%s/-%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", key, fi.Name, strings.Join(u.Values[fi.Name], " "))
			}
		}
		if len(files) > 0 {
			b.WriteString("\t" + strings.Join(files, "|") + ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n")
		}
		if len(text) > 0 {
			b.WriteString("\t" + strings.Join(text, "|") + ") COMPREPLY=(); return ;;\n")
		}
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tcase $cmd in\n")
	for _, u := range units(c) {
		key := u.Name
		if u == c {
			key = ""
		}
		fmt.Fprintf(&b, "\t%q) words=%q ;;\n", key, strings.Join(words(u), " "))
	}
	b.WriteString("\tesac\n")
	if len(c.Commands) > 0 {
		var names []string
		for _, sub := range c.Commands {
			names = append(names, sub.Name)
		}
		fmt.Fprintf(&b, "\t((COMP_CWORD == 1)) && words=\"%s $words\"\n", strings.Join(names, " "))
	}
	b.WriteString("\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	b.WriteString("}\n")
	fmt.Fprintf(&b, "complete -F %s %s\n", fn, c.Name)
	return b.String()
}

// zshDesc makes text an _arguments description: its first clause, with
// the characters _arguments gives a meaning escaped.
func zshDesc(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	s = strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`, "'", `'\''`).Replace(s)
	return s
}

func zshCompletion(c *Command, def string) string {
	var b strings.Builder
	fn := "_" + ident(c.Name)
	b.WriteString("#compdef " + c.Name + "\n")
	b.WriteString(header(c, "#"))
	for _, u := range units(c) {
		name := fn
		if u != c {
			name += "_" + ident(u.Name)
		}
		b.WriteString(name + "() {\n\t_arguments -S")
		for _, fi := range All(u.Flags) {
			spec := "'*-" + fi.Name + "[" + zshDesc(fi.Usage) + "]"
			switch kindOf(u, fi) {
			case argFile:
				spec += ":" + fi.Arg + ":_files"
			case argText:
				spec += ":" + fi.Arg + ": "
			case argChoice:
				spec += ":" + fi.Arg + ":(" + strings.Join(u.Values[fi.Name], " ") + ")"
			}
			b.WriteString(" \\\n\t\t" + spec + "'")
		}
		if ws := wordsOnly(u); len(ws) > 0 {
			b.WriteString(" \\\n\t\t'*:argument:(" + strings.Join(ws, " ") + ")'")
		}
		b.WriteString("\n}\n")
	}
	if len(c.Commands) > 0 {
		b.WriteString(fn + "() {\n\tlocal -a commands\n\tcommands=(")
		for _, sub := range c.Commands {
			b.WriteString("\n\t\t'" + sub.Name + ":" + zshDesc(sub.Summary) + "'")
		}
		b.WriteString("\n\t)\n")
		b.WriteString("\tlocal cmd=${words[2]}\n")
		b.WriteString("\tif (( CURRENT > 2 )) && (( ${commands[(I)$cmd:*]} )); then\n")
		b.WriteString("\t\tshift words\n\t\t(( CURRENT-- ))\n\telse\n")
		fmt.Fprintf(&b, "\t\tcmd=%s\n", def)
		b.WriteString("\t\t(( CURRENT == 2 )) && _describe -t commands command commands\n\tfi\n")
		b.WriteString("\t" + fn + "_${cmd}\n}\n")
	}
	fmt.Fprintf(&b, "if [[ $funcstack[1] == %s ]]; then\n\t%s \"$@\"\nelse\n\tcompdef %s %s\nfi\n", fn, fn, fn, c.Name)
	return b.String()
}

// wordsOnly are a command's completed words that are not flags.
func wordsOnly(c *Command) []string {
	var out []string
	for _, w := range words(c) {
		if !strings.HasPrefix(w, "-") {
			out = append(out, w)
		}
	}
	return out
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func fishCompletion(c *Command, def string) string {
	var b strings.Builder
	b.WriteString(header(c, "#"))
	fmt.Fprintf(&b, "complete -c %s -f\n", c.Name)
	var names []string
	for _, sub := range c.Commands {
		names = append(names, sub.Name)
	}
	none := "not __fish_seen_subcommand_from " + strings.Join(names, " ")
	for _, sub := range c.Commands {
		fmt.Fprintf(&b, "complete -c %s -n %s -a %s -d %s\n", c.Name, fishQuote(none), sub.Name, fishQuote(firstClause(sub.Summary)))
	}
	for _, u := range units(c) {
		cond := ""
		if u != c {
			cond = "__fish_seen_subcommand_from " + u.Name
			if u.Name == def {
				cond += "; or " + none
			}
			cond = " -n " + fishQuote(cond)
		}
		for _, fi := range All(u.Flags) {
			line := fmt.Sprintf("complete -c %s%s -o %s", c.Name, cond, fi.Name)
			switch kindOf(u, fi) {
			case argFile:
				line += " -r -F"
			case argText:
				line += " -x"
			case argChoice:
				line += " -x -a " + fishQuote(strings.Join(u.Values[fi.Name], " "))
			}
			b.WriteString(line + " -d " + fishQuote(firstClause(fi.Usage)) + "\n")
		}
		if ws := wordsOnly(u); len(ws) > 0 {
			fmt.Fprintf(&b, "complete -c %s%s -a %s\n", c.Name, cond, fishQuote(strings.Join(ws, " ")))
		}
	}
	return b.String()
}

func firstClause(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// Names returns the names of c's subcommands, sorted.
func Names(c *Command) []string {
	var out []string
	for _, sub := range c.Commands {
		out = append(out, sub.Name)
	}
	slices.Sort(out)
	return out
}
