package flagdoc

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const usage = `Usage:
  prog [flags] NAME

Options (every flag also reads P_<FLAG>):
  -proxy URL            the proxy, a template
                        continued here; repeatable
  -http3                use HTTP/3
  -resolve HOST:PORT:ADDR  dial ADDR
  -pin HOST=cert:HEX    a certificate pin
  -pin HOST=key:HEX     a key pin
Stub options:
  -listen ADDR          UDP and TCP address
  -a, -b                two at once
Examples:
  prog -proxy x NAME
`

func TestUsageText(t *testing.T) {
	got := UsageText(usage)
	want := map[string]Doc{
		"proxy":   {"", "URL", "the proxy, a template continued here; repeatable"},
		"http3":   {"", "", "use HTTP/3"},
		"resolve": {"", "HOST:PORT:ADDR", "dial ADDR"},
		"pin":     {"", "HOST=cert:HEX", "a certificate pin; -pin HOST=key:HEX: a key pin"},
		"listen":  {"stub", "ADDR", "UDP and TCP address"},
		"a":       {"stub", "", "two at once"},
		"b":       {"stub", "", "two at once"},
	}
	if len(got) != len(want) {
		t.Errorf("got %d flags %v, want %d", len(got), got, len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("-%s: %+v, want %+v", k, got[k], w)
		}
	}
}

func TestRowsAndMarkdown(t *testing.T) {
	fs := flag.NewFlagSet("p", flag.ContinueOnError)
	fs.String("seed-file", "", "`FILE` holding the seed")
	fs.Duration("rotate", 24*time.Hour, "key rotation `period`")
	fs.Bool("doh", false, "also serve | plain DoH")
	rows, err := Rows(fs, "ODOH_TARGET", nil)
	if err != nil {
		t.Fatal(err)
	}
	md := Markdown(rows)
	for _, w := range []string{
		"| flag | environment | default | meaning |",
		"| `-doh` | `ODOH_TARGET_DOH` | `false` | also serve \\| plain DoH |",
		"| `-rotate period` | `ODOH_TARGET_ROTATE` | `24h0m0s` | key rotation period |",
		"| `-seed-file FILE` | `ODOH_TARGET_SEED_FILE` | — | FILE holding the seed |",
	} {
		if !strings.Contains(md, w+"\n") {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
}

func TestRowsFromUsageText(t *testing.T) {
	fs := flag.NewFlagSet("p", flag.ContinueOnError)
	for _, n := range []string{"proxy", "http3", "resolve", "pin", "listen", "a", "b"} {
		fs.String(n, "", "")
	}
	rows, err := Rows(fs, "P", UsageText(usage))
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Section != "" || rows[len(rows)-1].Section != "stub" {
		t.Errorf("general flags not first: %+v", rows)
	}
	md := Markdown(rows)
	if !strings.Contains(md, "| all | `-proxy URL` | `P_PROXY` |") || !strings.Contains(md, "| stub | `-listen ADDR` | `P_LISTEN` |") {
		t.Errorf("markdown:\n%s", md)
	}
	// A flag the text forgets, and a flag the text invents, both fail.
	fs.Bool("forgotten", false, "")
	if _, err := Rows(fs, "P", UsageText(usage)); err == nil || !strings.Contains(err.Error(), "-forgotten") {
		t.Errorf("undocumented flag: %v", err)
	}
	small := flag.NewFlagSet("p", flag.ContinueOnError)
	small.String("proxy", "", "")
	if _, err := Rows(small, "P", UsageText(usage)); err == nil || !strings.Contains(err.Error(), "-listen") {
		t.Errorf("documented flag that does not exist: %v", err)
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	doc := "# x\n<!-- BEGIN flags p -->\nold\n<!-- END flags p -->\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, "p", "new\n", false); err == nil || !strings.Contains(err.Error(), "make docs") {
		t.Errorf("stale reference: %v", err)
	}
	if err := Check(path, "p", "new\n", true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "# x\n<!-- BEGIN flags p -->\nnew\n<!-- END flags p -->\nafter\n" {
		t.Errorf("updated to %q", got)
	}
	if err := Check(path, "p", "new\n", false); err != nil {
		t.Errorf("fresh reference: %v", err)
	}
	if err := Check(path, "q", "x", false); err == nil {
		t.Error("missing markers accepted")
	}
}
