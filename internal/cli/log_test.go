package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNewLogger(t *testing.T) {
	testCases := []struct {
		name, format, level string
		wantErr             string
		debug, info         bool
		json                bool
	}{
		{name: "defaults", info: true},
		{name: "json debug", format: "json", level: "debug", debug: true, info: true, json: true},
		{name: "text warn", format: "text", level: "WARN"},
		{name: "bad format", format: "xml", wantErr: `invalid log format "xml"`},
		{name: "bad level", level: "loud", wantErr: `invalid log level "loud"`},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, tc.format, tc.level)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("dbg")
			l.Info("inf", "k", "v")
			out := buf.String()
			if strings.Contains(out, "dbg") != tc.debug || strings.Contains(out, "inf") != tc.info {
				t.Errorf("output %q: want debug %v, info %v", out, tc.debug, tc.info)
			}
			if tc.json && tc.info {
				last := strings.Split(strings.TrimSpace(out), "\n")
				var m map[string]any
				if err := json.Unmarshal([]byte(last[len(last)-1]), &m); err != nil || m["k"] != "v" {
					t.Errorf("not JSON: %q (%v)", out, err)
				}
			}
		})
	}
}

func TestLogConfigFlags(t *testing.T) {
	var c LogConfig
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse([]string{"-log-format", "json", "-log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l, err := c.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Warn("quiet")
	l.Error("loud")
	if out := buf.String(); strings.Contains(out, "quiet") || !strings.Contains(out, `"msg":"loud"`) {
		t.Errorf("output %q", out)
	}
}

// Durations read the same in both formats, as the flags take them: "1.5s",
// never JSON nanoseconds; in groups too.
func TestDurationsAreStrings(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		l, err := NewLogger(&buf, format, "")
		if err != nil {
			t.Fatal(err)
		}
		l.Info("x", "took", 1500*time.Millisecond, slog.Group("g", "every", 24*time.Hour), "n", 3)
		out := buf.String()
		want := map[string][]string{
			"json": {`"took":"1.5s"`, `"g":{"every":"24h0m0s"}`, `"n":3`},
			"text": {"took=1.5s", "g.every=24h0m0s", "n=3"},
		}[format]
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q lacks %q", format, out, w)
			}
		}
	}
}
