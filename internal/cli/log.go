package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// LogConfig selects the log format and level. Its zero value means text
// at info level.
type LogConfig struct {
	// Format is "text" (the default) or "json".
	Format string
	// Level is "debug", "info" (the default), "warn" or "error".
	Level string
}

// AddFlags defines -log-format and -log-level on fs, bound to c.
func (c *LogConfig) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Format, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&c.Level, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
}

// Logger returns a logger writing to w in the configured format and level.
func (c LogConfig) Logger(w io.Writer) (*slog.Logger, error) {
	return NewLogger(w, c.Format, c.Level)
}

// durationString writes a time.Duration as the text handler and the flags
// do ("1.5s", "24h0m0s"), rather than as slog's JSON nanoseconds, so that
// a logged duration reads and pastes as a flag value in both formats.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// NewLogger returns a logger writing to w. Durations are logged as Go
// duration strings ("1.5s") in both formats. format is "text" or "json"
// (empty means text); level is "debug", "info", "warn" or "error"
// (empty means info; slog's forms such as "warn+2" are accepted too).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("invalid log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = durationString
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log format %q: want text or json", format)
	}
}
