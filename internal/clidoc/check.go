package clidoc

import (
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// UpdateEnv is the environment variable that makes CheckFile write the
// generated files instead of comparing them ("make docs" sets it).
const UpdateEnv = "ODOH_UPDATE_DOCS"

// CheckFile is a generated file's test: it fails t if the file at path
// does not hold content, saying how to regenerate it; with UpdateEnv=1 it
// writes the file instead.
func CheckFile(t testing.TB, path string, content []byte) {
	t.Helper()
	if os.Getenv(UpdateEnv) == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if !bytes.Equal(have, content) {
		t.Errorf("%s is stale (a flag or a text changed): run make docs", path)
	}
}

// CheckScreen fails t unless text fits a terminal of Width columns and
// ScreenLines lines.
func CheckScreen(t testing.TB, what, text string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) > ScreenLines {
		t.Errorf("%s: %d lines, more than a %d-line screen:\n%s", what, len(lines), ScreenLines, text)
	}
	CheckWidth(t, what, text)
}

// CheckWidth fails t if a line of text is wider than Width columns.
func CheckWidth(t testing.TB, what, text string) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(l); n > Width {
			t.Errorf("%s: a line of %d columns: %q", what, n, l)
		}
	}
}

// CheckManRenders fails t if groff's man macros warn about page. Without
// groff (Debian's groff-base) it skips, or fails under CI=true.
func CheckManRenders(t testing.TB, page []byte) {
	t.Helper()
	if _, err := exec.LookPath("groff"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("groff missing (Debian groff-base)")
		}
		t.Skip("groff missing (Debian groff-base)")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff: %v: %s", err, out)
	}
}

// CheckDaemonHelp asserts a daemon's help conventions: -h fits a terminal,
// starts with its usage and shows examples; -help-all lists every flag of
// fs with its environment variable (env, one of them); a misspelt flag
// is one line with the hint to -h. run runs the daemon with args.
func CheckDaemonHelp(t testing.TB, name string, fs *flag.FlagSet, env string, run func(args []string, stdout, stderr io.Writer) int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr.String())
	}
	CheckScreen(t, name+" -h", stdout.String())
	if !strings.HasPrefix(stdout.String(), "Usage: "+name+" ") || !strings.Contains(stdout.String(), "\nExamples:\n") {
		t.Errorf("-h:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"-help-all"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-help-all: exit %d", code)
	}
	CheckWidth(t, name+" -help-all", stdout.String())
	for _, fi := range All(fs) {
		if !strings.Contains(stdout.String(), "  -"+fi.Name+"\n") && !strings.Contains(stdout.String(), "  -"+fi.Name+" ") {
			t.Errorf("-help-all lacks -%s", fi.Name)
		}
	}
	if !strings.Contains(stdout.String(), "[$"+env+"]") {
		t.Error("-help-all names no environment variable")
	}
	stdout.Reset()
	if code := run([]string{"-listne", ":443"}, &stdout, &stderr); code != 2 || stdout.Len() != 0 ||
		stderr.String() != name+": unknown flag -listne (did you mean -listen?); run '"+name+" -h' for usage\n" {
		t.Errorf("wrong flag: exit %d, stderr %q", code, stderr.String())
	}
}
