package clidoc

import (
	"bytes"
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
