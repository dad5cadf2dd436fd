package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type config struct {
	listen   string
	doh      bool
	rotate   time.Duration
	port     int
	upstream Strings
}

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:443", "")
	fs.BoolVar(&c.doh, "doh", false, "")
	fs.DurationVar(&c.rotate, "rotate", 24*time.Hour, "")
	fs.IntVar(&c.port, "max-body-size", 512, "")
	fs.Var(&c.upstream, "upstream", "")
	return fs
}

func TestEnvName(t *testing.T) {
	testCases := []struct{ prefix, name, want string }{
		{"ODOH_TARGET", "listen", "ODOH_TARGET_LISTEN"},
		{"ODOH_TARGET", "seed-file", "ODOH_TARGET_SEED_FILE"},
		{"ODOH", "log.level", "ODOH_LOG_LEVEL"},
		{"", "allow-target", "ALLOW_TARGET"},
	}
	for _, tc := range testCases {
		if got := EnvName(tc.prefix, tc.name); got != tc.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tc.prefix, tc.name, got, tc.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	testCases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr []string
	}{{
		name: "defaults",
		want: config{listen: "127.0.0.1:443", rotate: 24 * time.Hour, port: 512},
	}, {
		name: "env beats default",
		env: map[string]string{
			"ODOH_TARGET_LISTEN":        "[::1]:8443",
			"ODOH_TARGET_DOH":           "true",
			"ODOH_TARGET_ROTATE":        "1h",
			"ODOH_TARGET_MAX_BODY_SIZE": "4096",
			"ODOH_TARGET_UPSTREAM":      "udp://127.0.0.1:53, tls://127.0.0.1:853",
		},
		want: config{listen: "[::1]:8443", doh: true, rotate: time.Hour, port: 4096,
			upstream: Strings{"udp://127.0.0.1:53", "tls://127.0.0.1:853"}},
	}, {
		name: "flag beats env",
		args: []string{"-listen", "127.0.0.1:1", "-doh=false", "-upstream", "tcp://127.0.0.1:53"},
		env: map[string]string{
			"ODOH_TARGET_LISTEN":   "127.0.0.1:2",
			"ODOH_TARGET_DOH":      "true",
			"ODOH_TARGET_UPSTREAM": "udp://127.0.0.1:53",
		},
		want: config{listen: "127.0.0.1:1", rotate: 24 * time.Hour, port: 512,
			upstream: Strings{"tcp://127.0.0.1:53"}},
	}, {
		name: "empty variable is unset",
		env:  map[string]string{"ODOH_TARGET_LISTEN": ""},
		want: config{listen: "127.0.0.1:443", rotate: 24 * time.Hour, port: 512},
	}, {
		name: "other prefixes ignored",
		env:  map[string]string{"ODOH_PROXY_LISTEN": "127.0.0.1:9", "LISTEN": "127.0.0.1:9"},
		want: config{listen: "127.0.0.1:443", rotate: 24 * time.Hour, port: 512},
	}, {
		name:    "bad values name the variables",
		env:     map[string]string{"ODOH_TARGET_ROTATE": "soon", "ODOH_TARGET_DOH": "maybe"},
		wantErr: []string{"ODOH_TARGET_ROTATE", `"soon"`, "-rotate", "ODOH_TARGET_DOH", `"maybe"`},
	}}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var c config
			fs := newFlagSet(&c)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs, "ODOH_TARGET")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("ApplyEnv succeeded")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.listen != tc.want.listen || c.doh != tc.want.doh || c.rotate != tc.want.rotate ||
				c.port != tc.want.port || c.upstream.String() != tc.want.upstream.String() {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	var s Strings
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.Var(&s, "allow-target", "")
	if err := fs.Parse([]string{"-allow-target", "a.example", "-allow-target", "b.example:443, ,c.example", "-allow-target="}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a.example", "b.example:443", "c.example"}
	if len(s) != len(want) {
		t.Fatalf("got %q, want %q", s, want)
	}
	for i := range want {
		if s[i] != want[i] {
			t.Fatalf("got %q, want %q", s, want)
		}
	}
	if s.String() != "a.example,b.example:443,c.example" {
		t.Errorf("String() = %q", s.String())
	}
	var nilStrings *Strings
	if nilStrings.String() != "" {
		t.Error("nil String() not empty")
	}
}
