// Package limitsdoc checks the README's table of limits against a daemon's
// flag definitions (its -h output), so that the table cannot go stale: every
// row names a flag the daemon has, with its default, and every flag that is
// a limit has a row.
package limitsdoc

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Row is one row of the table.
type Row struct {
	Flag, Daemon, Default string
}

// ReadTable returns the rows of the "## Limits" section of the Markdown
// file at path.
func ReadTable(t testing.TB, path string) []Row {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Limits\n")
	if !ok {
		t.Fatalf("%s: no \"## Limits\" section", path)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var rows []Row
	for line := range strings.SplitSeq(sec, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("%s: limits row with %d cells, want 5: %s", path, len(cells), line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, Row{Flag: strings.Trim(cells[0], "`-"), Daemon: cells[1], Default: tableDefault(cells[2])})
	}
	if len(rows) == 0 {
		t.Fatalf("%s: empty limits table", path)
	}
	return rows
}

// tableDefault is a table's default cell as FlagDefaults writes it: a zero
// value ("0", "0s", or "0 (off)" and the like) is "".
func tableDefault(cell string) string {
	if cell == "0" || cell == "0s" || strings.HasPrefix(cell, "0 (") {
		return ""
	}
	return cell
}

// Defaults parses flag.PrintDefaults output into flag name → default as
// printed ("" for a flag printed without one: a zero value).
func Defaults(usage string) map[string]string {
	defs := make(map[string]string)
	var name string
	for line := range strings.SplitSeq(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			name, _, _ = strings.Cut(strings.TrimPrefix(line, "  -"), " ")
			name, _, _ = strings.Cut(name, "\t")
			defs[name] = ""
		case name != "" && strings.HasPrefix(line, "    \t"):
			if i := strings.LastIndex(line, "(default "); i >= 0 && strings.HasSuffix(line, ")") {
				v := line[i+len("(default ") : len(line)-1]
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
				defs[name] = v
			}
		default:
			name = ""
		}
	}
	return defs
}

// IsLimit reports whether a flag name is a limit that the table must list:
// a cap (max-…), a timeout, a rate, a burst, a budget or a memory limit.
func IsLimit(name string) bool {
	if strings.HasPrefix(name, "max-") {
		return true
	}
	for _, s := range []string{"-timeout", "-rate", "-burst", "-budget", "-limit"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// FlagDefaults returns flag name → default of fs, as flag.PrintDefaults
// shows it ("" for a zero value).
func FlagDefaults(fs *flag.FlagSet) map[string]string {
	defs := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) {
		switch f.DefValue {
		case "0", "0s", "false", "":
			defs[f.Name] = ""
		default:
			defs[f.Name] = f.DefValue
		}
	})
	return defs
}

// CheckFlags compares the rows for daemon (and "both") with the daemon's
// flag definitions.
func CheckFlags(t testing.TB, rows []Row, daemon string, fs *flag.FlagSet) {
	t.Helper()
	check(t, rows, daemon, FlagDefaults(fs))
}

// Check compares the rows for daemon (and "both") with the daemon's usage.
func Check(t testing.TB, rows []Row, daemon, usage string) {
	t.Helper()
	check(t, rows, daemon, Defaults(usage))
}

func check(t testing.TB, rows []Row, daemon string, defs map[string]string) {
	t.Helper()
	if len(defs) == 0 {
		t.Fatalf("no flags in the usage of %s", daemon)
	}
	listed := make(map[string]bool)
	for _, r := range rows {
		if r.Daemon != daemon && r.Daemon != "both" {
			continue
		}
		listed[r.Flag] = true
		def, ok := defs[r.Flag]
		switch {
		case !ok:
			t.Errorf("README limits: %s has no flag -%s", daemon, r.Flag)
		case def != r.Default:
			t.Errorf("README limits: -%s of %s defaults to %q, the table says %q", r.Flag, daemon, def, r.Default)
		}
	}
	for name := range defs {
		if IsLimit(name) && !listed[name] {
			t.Errorf("README limits: the table has no row for -%s of %s", name, daemon)
		}
	}
}
