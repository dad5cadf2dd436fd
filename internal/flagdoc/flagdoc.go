// Package flagdoc writes the README's reference of a program's flags and
// environment variables from the flag.FlagSet that parses them, so that the
// reference cannot drift from the code: each command's test renders its
// table and fails when the README's copy differs ("make docs" rewrites it).
//
// In the README a reference sits between two markers:
//
//	<!-- BEGIN flags odoh-target -->
//	…generated…
//	<!-- END flags odoh-target -->
package flagdoc

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
)

// Row is one flag of a reference.
type Row struct {
	// Section groups flags in the table (the CLI's subcommands); empty
	// for a program without sections.
	Section string
	// Flag is "-name ARG", as a user types it.
	Flag string
	// Env is the environment variable that sets it.
	Env string
	// Default is the default value as the program shows it.
	Default string
	// Usage is what it does.
	Usage string
}

// Doc is a flag's documentation in a hand-written usage text.
type Doc struct {
	Section string // "" or the subcommand of an "X options:" heading
	Arg     string // the argument's name (URL, FILE), "" for a boolean
	Usage   string // what the flag does
}

// Rows returns a row for every flag of fs, in name order; envPrefix names
// the environment variables as cli.ApplyEnv reads them. docs, if not nil,
// documents the flags instead of their own usage strings (for a program
// with a hand-written usage text, see UsageText); a flag missing from it is
// an error, and so is a documented flag that fs does not define.
func Rows(fs *flag.FlagSet, envPrefix string, docs map[string]Doc) ([]Row, error) {
	var rows []Row
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		// The argument's name as the help and the manual show it
		// (internal/clidoc): FILE, URL, D for a duration, N for a number.
		fi := clidoc.Flag(fs, f.Name)
		arg, usage := fi.Arg, fi.Usage
		section := ""
		if docs != nil {
			d, ok := docs[f.Name]
			if !ok {
				missing = append(missing, "-"+f.Name)
				return
			}
			section, arg, usage = d.Section, d.Arg, d.Usage
		}
		name := "-" + f.Name
		if arg != "" {
			name += " " + arg
		}
		rows = append(rows, Row{Section: section, Flag: name, Env: cli.EnvName(envPrefix, f.Name),
			Default: f.DefValue, Usage: usage})
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("flags missing from the usage text: %s", strings.Join(missing, ", "))
	}
	var unknown []string
	for name := range docs {
		if fs.Lookup(name) == nil {
			unknown = append(unknown, "-"+name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("the usage text documents flags that do not exist: %s", strings.Join(unknown, ", "))
	}
	// The flags of every command first, then each section's.
	slices.SortStableFunc(rows, func(a, b Row) int { return strings.Compare(a.Section, b.Section) })
	return rows, nil
}

// Markdown renders rows as a Markdown table, with a section column when any
// row has one.
func Markdown(rows []Row) string {
	sections := false
	for _, r := range rows {
		sections = sections || r.Section != ""
	}
	var b strings.Builder
	if sections {
		b.WriteString("| command | flag | environment | default | meaning |\n|---|---|---|---|---|\n")
	} else {
		b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	}
	for _, r := range rows {
		def := "—"
		if r.Default != "" {
			def = code(r.Default)
		}
		env := "—" // a flag that reads no environment variable
		if r.Env != "" {
			env = code(r.Env)
		}
		cells := []string{code(r.Flag), env, def, escape(r.Usage)}
		if sections {
			section := r.Section
			if section == "" {
				section = "all"
			}
			cells = append([]string{section}, cells...)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

func code(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func markers(name string) (begin, end string) {
	return "<!-- BEGIN flags " + name + " -->\n", "<!-- END flags " + name + " -->"
}

// Replace returns doc with the reference named name replaced by content.
func Replace(doc []byte, name, content string) ([]byte, error) {
	begin, end := markers(name)
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %q … %q markers", strings.TrimSpace(begin), end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString(content)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// Check compares the reference named name in the file path with content
// and, when update is true, rewrites the file instead. A stale reference is
// an error that says how to regenerate it.
func Check(path, name, content string, update bool) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fresh, err := Replace(doc, name, content)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(doc, fresh) {
		return nil
	}
	if update {
		return os.WriteFile(path, fresh, 0o644)
	}
	return fmt.Errorf("%s: the %s flag reference is stale (a flag, default or usage changed): run make docs", path, name)
}

// UpdateEnv is the environment variable that makes CheckREADME rewrite the
// README instead of failing ("make docs" sets it).
const UpdateEnv = "ODOH_UPDATE_README"

// CheckREADME is a command's reference test: it fails t if rows could not
// be made (err) or if the reference named name in the README at path is
// not Markdown(rows); with UpdateEnv=1 it rewrites the README instead.
func CheckREADME(t testing.TB, path, name string, rows []Row, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(path, name, Markdown(rows), os.Getenv(UpdateEnv) == "1"); err != nil {
		t.Error(err)
	}
}

// UsageText indexes a hand-written usage text of the form
//
//	Options:
//	  -proxy URL            what it does,
//	                        continued
//	  -a, -b                two flags described together
//	Stub options:
//	  -listen ADDR          …
//
// by flag name: the section ("" before the first "X options:" line, then
// the lower-case X), the argument and the description joined into one line.
func UsageText(text string) map[string]Doc {
	out := map[string]Doc{}
	section := ""
	var last []string
	for _, line := range strings.Split(text, "\n") {
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			section, last = strings.ToLower(m[1]), nil
			continue
		}
		if m := flagLineRE.FindStringSubmatch(line); m != nil {
			last = nil
			arg, usage := strings.TrimSpace(m[2]), strings.TrimSpace(m[3])
			for _, n := range strings.Split(m[1], ",") {
				n = strings.TrimPrefix(strings.TrimSpace(n), "-")
				if d, ok := out[n]; ok {
					// A flag with a line per form of its argument:
					// one row, each form's description in turn.
					d.Usage += "; -" + n + " " + arg + ": " + usage
					out[n] = d
				} else {
					out[n] = Doc{Section: section, Arg: arg, Usage: usage}
				}
				last = append(last, n)
			}
			continue
		}
		if cont := strings.TrimSpace(line); last != nil && cont != "" && strings.HasPrefix(line, "        ") {
			for _, n := range last {
				d := out[n]
				d.Usage += " " + cont
				out[n] = d
			}
			continue
		}
		last = nil
	}
	return out
}

var (
	sectionRE  = regexp.MustCompile(`^([A-Z][a-z]+) options:$`)
	flagLineRE = regexp.MustCompile(`^  (-[a-z0-9-]+(?:, -[a-z0-9-]+)*)((?: \S+)?)\s{2,}(\S.*)$`)
)
