// Package cli holds the plumbing the odoh daemons and CLI share: flags
// that fall back to environment variables, a repeatable list flag, slog
// set-up, and a signal-driven lifecycle.
//
// Configuration precedence is flag, then environment, then default:
//
//	fs := flag.NewFlagSet("odoh-target", flag.ContinueOnError)
//	var upstreams cli.Strings
//	fs.Var(&upstreams, "upstream", "upstream resolver `URL` (repeatable)")
//	var logCfg cli.LogConfig
//	logCfg.AddFlags(fs)
//	if err := fs.Parse(args); err != nil { ... }
//	if err := cli.ApplyEnv(fs, "ODOH_TARGET"); err != nil { ... } // ODOH_TARGET_UPSTREAM=...
//	logger, err := logCfg.Logger(os.Stderr)
//
// The lifecycle ([Run]) follows what operators of DNS daemons expect:
// SIGTERM or SIGINT fails readiness first, then drains in-flight work
// under a fresh timeout; SIGHUP reloads and keeps the old state on error.
// A [Group] serves a daemon's listeners as one: if one stops serving, the
// others stop and Run returns the error, so the daemon exits non-zero.
package cli
