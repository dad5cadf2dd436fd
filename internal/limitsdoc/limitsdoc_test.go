package limitsdoc

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("max-conns", 4096, "connections")
	fs.Duration("read-timeout", 10*time.Second, "bound `reading`")
	fs.String("name", "odoh-proxy", "the `NAME`")
	fs.Int("zero", 0, "no default printed")
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	got := Defaults(b.String())
	want := map[string]string{"max-conns": "4096", "read-timeout": "10s", "name": "odoh-proxy", "zero": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (from %q)", k, got[k], v, b.String())
		}
	}
}

// TestCheckCatches: a wrong default, a row without a flag and a limit
// without a row are each reported.
func TestCheckCatches(t *testing.T) {
	readme := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(readme, []byte("# x\n\n## Limits\n\n| Flag | Daemon | Default | a | b |\n|---|---|---|---|---|\n"+
		"| `-max-conns` | both | 100 | x | y |\n| `-gone` | target | 1 | x | y |\n\n## Next\n| `-not-here` | both | 1 | x | y |\n"), 0o644)
	rows := ReadTable(t, readme)
	if len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}
	usage := "  -max-conns int\n    \tconnections (default 4096)\n  -idle-timeout duration\n    \tidle (default 2m0s)\n"
	rec := &recorder{TB: t}
	Check(rec, rows, "target", usage)
	if len(rec.errs) != 3 {
		t.Errorf("reported %q, want 3 errors", rec.errs)
	}
}

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }

// TestTableDefault: a table's zero-like default cell matches a zero flag
// default, and nothing else does.
func TestTableDefault(t *testing.T) {
	for cell, want := range map[string]string{"0": "", "0s": "", "0 (off)": "", "10s": "10s", "0.5": "0.5", "1024": "1024"} {
		if got := tableDefault(cell); got != want {
			t.Errorf("tableDefault(%q) = %q, want %q", cell, got, want)
		}
	}
}
