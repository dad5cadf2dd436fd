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
	fs.StringVar(&c.Format, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&c.Level, "log-level", "info", "log `level`: debug, info, warn or error")
}

// Logger returns a logger writing to w in the configured format and level.
func (c LogConfig) Logger(w io.Writer) (*slog.Logger, error) {
	return NewLogger(w, c.Format, c.Level)
}

// NewLogger returns a logger writing to w. format is "text" or "json"
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
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log format %q: want text or json", format)
	}
}
