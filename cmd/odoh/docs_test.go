package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/clidoc"
)

// TestGeneratedDocs: the manual page and the completion scripts in docs/
// are what the flag definitions give (make docs rewrites them), and the
// manual renders without a warning.
func TestGeneratedDocs(t *testing.T) {
	prog := programDoc(commands())
	var man bytes.Buffer
	clidoc.Man(&man, clidoc.Page{Command: prog, Section: 1,
		SeeAlso: []string{"odoh-target(8)", "odoh-proxy(8)", "dig(1)"}})
	clidoc.CheckFile(t, "../../docs/man/odoh.1", man.Bytes())
	clidoc.CheckManRenders(t, man.Bytes())
	for shell, file := range map[string]string{"bash": "odoh.bash", "zsh": "_odoh", "fish": "odoh.fish"} {
		var b bytes.Buffer
		if err := clidoc.Completion(&b, shell, prog, "query"); err != nil {
			t.Fatal(err)
		}
		clidoc.CheckFile(t, filepath.Join("../../docs/completion", file), b.Bytes())
		// odoh completion prints the same.
		out, _, code := runBin(t, nil, "completion", shell)
		if code != 0 || out != b.String() {
			t.Errorf("odoh completion %s: exit %d, or not the generated script", shell, code)
		}
	}
}

// The bash completion completes what a user types: subcommands, the
// flags of the subcommand at hand, dig's +options, types, file names for
// FILE arguments and the values of -log-level.
func TestBashCompletion(t *testing.T) {
	var script bytes.Buffer
	if err := clidoc.Completion(&script, "bash", programDoc(commands()), "query"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "odoh.bash")
	if err := os.WriteFile(path, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-file.pem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		sh := "source " + path + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _odoh; printf '%s\\n' \"${COMPREPLY[@]}\""
		cmd := exec.Command("bash", "--norc", "-c", sh)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string
		not   []string
	}{
		{[]string{"odoh", "st"}, []string{"stamp", "stub"}, nil},
		{[]string{"odoh", "-pro"}, []string{"-proxy"}, nil},
		{[]string{"odoh", "stub", "-lis"}, []string{"-listen"}, nil},
		{[]string{"odoh", "stamp", "-no"}, []string{"-nofilter", "-nolog"}, []string{"-listen"}},
		{[]string{"odoh", "example.com", "+sh"}, []string{"+short"}, nil},
		{[]string{"odoh", "example.com", "AA"}, []string{"AAAA"}, nil},
		{[]string{"odoh", "-ca", "ca-"}, []string{"ca-file.pem"}, nil},
		{[]string{"odoh", "stub", "-log-level", "w"}, []string{"warn"}, nil},
		{[]string{"odoh", "-target", "x"}, nil, []string{"-target"}},
	} {
		got := complete(tc.words...)
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("%q completes %q, want %q among them", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if contains(got, w) {
				t.Errorf("%q completes %q, which holds %q", tc.words, got, w)
			}
		}
	}
}

// The fish completion, asked as fish itself completes a command line.
func TestFishCompletion(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("fish missing (Debian fish)")
		}
		t.Skip("fish missing (Debian fish)")
	}
	var script bytes.Buffer
	if err := clidoc.Completion(&script, "fish", programDoc(commands()), "query"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "odoh.fish")
	if err := os.WriteFile(path, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(line string) string {
		out, err := exec.Command("fish", "--no-config", "-c", "source "+path+"; complete -C '"+line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", line, err, out)
		}
		return string(out)
	}
	for line, want := range map[string]string{
		"odoh st":               "stub\t",
		"odoh -pro":             "-proxy\t",
		"odoh stub -lis":        "-listen\t",
		"odoh example.com +sh":  "+short",
		"odoh -log-level ":      "debug",
		"odoh stamp -nol":       "-nolog\t",
		"odoh completion -":     "",
		"odoh configs -tar":     "-target\t",
		"odoh example.com HTTP": "HTTPS",
	} {
		if got := complete(line); !strings.Contains(got, want) {
			t.Errorf("fish completes %q as %q, want %q", line, got, want)
		}
	}
	if got := complete("odoh stamp -lis"); strings.Contains(got, "-listen") {
		t.Errorf("stamp completes -listen: %q", got)
	}
}

// The zsh completion loads in zsh's completion system without an error.
func TestZshCompletionLoads(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zsh missing (Debian zsh)")
		}
		t.Skip("zsh missing (Debian zsh)")
	}
	var script bytes.Buffer
	if err := clidoc.Completion(&script, "zsh", programDoc(commands()), "query"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_odoh"), script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sh := "fpath=(" + dir + " $fpath); autoload -Uz compinit; compinit -u -D; " +
		"autoload -Uz _odoh; functions _odoh >/dev/null && print loaded; " +
		"source " + filepath.Join(dir, "_odoh") + "; print ${_comps[odoh]}"
	out, err := exec.Command("zsh", "-f", "-c", sh).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "loaded") || !strings.Contains(string(out), "_odoh") {
		t.Errorf("zsh: %v: %s", err, out)
	}
	if out, err := exec.Command("zsh", "-n", filepath.Join(dir, "_odoh")).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v: %s", err, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The zsh completion, asked as zsh's line editor completes a command
// line typed with a TAB in an interactive zsh on a pseudo-terminal
// (zsh/zpty). Each case waits for the completion to appear in the
// terminal's output, not for a time.
func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zsh missing (Debian zsh)")
		}
		t.Skip("zsh missing (Debian zsh)")
	}
	var script bytes.Buffer
	if err := clidoc.Completion(&script, "zsh", programDoc(commands()), "query"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_odoh"), script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// $1 is typed, then TAB; the script prints FOUND once $2 shows. The
	// driver's own directory holds _odoh.
	const driver = `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=(${0:A:h} \$fpath); autoload -Uz compinit; compinit -u -D; print RE''ADY"
zpty -r -m z line '*READY*' || exit 1
zpty -w -n z "$1"$'\t'
zpty -r -m z out "*$2*" && print -r -- FOUND
zpty -d z
`
	drv := filepath.Join(dir, "drive.zsh")
	if err := os.WriteFile(drv, []byte(driver), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"odoh stub -lis", "-listen"},
		{"odoh st", "stamp"},
		{"odoh example.com +sh", "+short"},
		{"odoh -log-level w", "warn"},
		{"odoh stamp -nol", "-nolog"},
		{"odoh configs -tar", "-target"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "zsh", "-f", drv, tc.line, tc.want).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "FOUND") {
			t.Errorf("zsh completes %q without %q (%v): %q", tc.line, tc.want, err, out)
		}
	}
}
