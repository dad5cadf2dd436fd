// Package daemon holds what the odoh server daemons (odoh-target and
// odoh-proxy) share around their own handler: the server flags (listen
// address, certificate, admin listener, HTTP limits and timeouts, drain,
// version, logging and runtime tuning), the certificate reloader, the
// HTTPS/HTTP3 query server and the admin server, the "<name> serving" log
// line that operators, the interop harness and the bench scripts read, and
// the signal-driven lifecycle of [cli.Run] with readiness, draining and
// SIGHUP reloads.
//
// A daemon's command keeps only what is its own: its flags, its usage
// text, its handler and what it reloads on SIGHUP besides the certificate.
//
//	fs := daemon.NewFlagSet("odoh-target")
//	var sf daemon.ServerFlags
//	sf.AddFlags(fs, "ODOH_TARGET", admin.TargetAddr)
//	// ... the daemon's own flags ...
//	doc := command(fs) // its clidoc.Command: -h, -help-all, the manual
//	if err := sf.Parse(fs, args, checkOwnFlags); err != nil {
//		return daemon.FlagsError(stdout, stderr, doc, err)
//	}
//	code := sf.Run("odoh-target", version, stdout, stderr, func(logger *slog.Logger) error {
//		d, err := daemon.New(daemon.Config{Flags: &sf, Logger: logger}) // loads the certificate, handles signals
//		if err != nil { return err }
//		defer d.Close()
//		h := newHandler(d.Registry) // the daemon's own handler and metrics
//		return d.Serve(ctx, daemon.Service{Name: "odoh-target", Version: version, Handler: h})
//	})
package daemon
