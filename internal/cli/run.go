package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/sdnotify"
)

// DefaultDrainTimeout bounds Hooks.Drain when Hooks.DrainTimeout is zero:
// the servers' own drain bound.
const DefaultDrainTimeout = httpserve.DefaultDrainTimeout

// startGrace is how long Run waits for Start to return once its context
// is cancelled after the drain.
const startGrace = 5 * time.Second

// Hooks are the steps of a daemon's life that Run drives.
type Hooks struct {
	// Start runs the service and blocks until it stops. Its context is
	// cancelled only after Drain has returned (it carries ctx's values but
	// not its cancellation). If Start returns before a stop is requested,
	// Run returns its error without draining. Required.
	Start func(ctx context.Context) error
	// Stopping is called first when a stop is requested; it should make
	// readiness fail. Optional.
	Stopping func()
	// Lameduck is how long Run waits between Stopping and Drain, so that
	// load balancers notice the failing readiness. Zero means no wait.
	Lameduck time.Duration
	// Drain shuts the service down gracefully, letting in-flight work
	// finish until its context is done (the servers' Shutdown). Optional.
	Drain func(ctx context.Context) error
	// DrainTimeout bounds Drain; zero means DefaultDrainTimeout. A second
	// SIGTERM or SIGINT cuts the lameduck wait and the drain short.
	DrainTimeout time.Duration
	// Reload is called on SIGHUP; on error the service keeps running with
	// its old state, and the error is logged. Optional.
	Reload func() error
	// Signals, when not nil, replaces the process's SIGINT, SIGTERM and
	// SIGHUP: NotifySignals, started early, or a test's channel. Nil means
	// Run calls NotifySignals itself.
	Signals <-chan os.Signal
	// Notify tells the service manager about the service's state (the
	// sdnotify states); nil means sdnotify.Notify, which systemd units of
	// Type=notify wait for and which does nothing outside systemd.
	Notify func(state string) error
}

// Run starts the service with Hooks.Start and runs it until SIGTERM or
// SIGINT arrives or ctx is cancelled; then it calls Stopping, waits
// Lameduck, calls Drain with a fresh DrainTimeout context, cancels Start's
// context and waits for Start to return. SIGHUP calls Reload. Run returns
// the errors of Drain and Start joined (Start returning context.Canceled
// after the drain is not an error), or Start's own result if it returned
// before any stop was requested.
func Run(ctx context.Context, logger *slog.Logger, h Hooks) error {
	if h.Start == nil {
		return errors.New("cli: no Start hook")
	}
	if logger == nil {
		logger = slog.Default()
	}
	sigs := h.Signals
	if sigs == nil {
		ch, stop := NotifySignals()
		defer stop()
		sigs = ch
	}

	notify := h.Notify
	if notify == nil {
		notify = sdnotify.Notify
	}
	tell := func(state string) {
		if err := notify(state); err != nil {
			logger.Warn("telling the service manager failed", "state", state, "err", err)
		}
	}

	startCtx, cancelStart := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStart()
	started := make(chan error, 1)
	go func() { started <- h.Start(startCtx) }()
	// The listeners are bound before Run (every caller listens first), so
	// connections queue from now on even if Start has not run yet.
	tell(sdnotify.Ready)

	var reason string
	for reason == "" {
		select {
		case err := <-started:
			return err
		case <-ctx.Done():
			reason = "context cancelled"
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				tell(sdnotify.Reloading)
				reload(logger, h.Reload)
				tell(sdnotify.Ready)
				continue
			}
			reason = sig.String()
		}
	}

	logger.Info("stopping", "reason", reason)
	tell(sdnotify.Stopping)
	if h.Stopping != nil {
		h.Stopping()
	}
	timeout := h.DrainTimeout
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	// A second stop signal forces the end; SIGHUP is ignored by now.
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					logger.Warn("second stop signal, not waiting for in-flight work", "signal", sig.String())
					cancelDrain()
					return
				}
			case <-drainCtx.Done():
				return
			}
		}
	}()
	if h.Lameduck > 0 {
		logger.Info("lameduck: readiness failing before drain", "duration", h.Lameduck)
		t := time.NewTimer(h.Lameduck)
		select {
		case <-t.C:
		case <-drainCtx.Done():
			t.Stop()
		}
	}
	var drainErr error
	if h.Drain != nil {
		dctx, cancel := context.WithTimeout(drainCtx, timeout)
		began := time.Now()
		drainErr = h.Drain(dctx)
		cancel()
		if drainErr != nil {
			drainErr = fmt.Errorf("draining: %w", drainErr)
		} else {
			logger.Info("drained", "duration", time.Since(began).Round(time.Millisecond))
		}
	}
	cancelStart()

	var startErr error
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case err := <-started:
		if err != nil && !errors.Is(err, context.Canceled) {
			startErr = err
		}
	case <-t.C:
		startErr = errors.New("service did not stop after draining")
	}
	return errors.Join(drainErr, startErr)
}

// NotifySignals relays SIGINT, SIGTERM and SIGHUP to the returned channel,
// for Hooks.Signals, until stop is called. A daemon calls it before it
// announces that it serves: a stop signal sent as soon as that line is
// logged would otherwise arrive before Run handles signals, and kill the
// process instead of draining it.
func NotifySignals() (signals <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

func reload(logger *slog.Logger, fn func() error) {
	if fn == nil {
		logger.Info("SIGHUP received; nothing to reload")
		return
	}
	err := fn()
	if err == nil {
		logger.Info("reloaded")
		return
	}
	if parts := reloadParts(err); len(parts) == 1 {
		logger.Error("reload failed for the "+parts[0]+", which keeps its previous state; the rest was reloaded", "err", err)
		return
	} else if len(parts) > 1 {
		logger.Error("reload failed for the "+joinAnd(parts)+", which keep their previous state; the rest was reloaded", "err", err)
		return
	}
	logger.Error("reload failed; keeping the previous state", "err", err)
}

// ReloadError is the failure to reload one part of a service's state
// (its certificate, its seed, …), which keeps its previous state. Return
// them from Hooks.Reload, joined with errors.Join when several fail, so
// that the log says which.
type ReloadError struct {
	// Part names what was not reloaded: "certificate", "seed", ….
	Part string
	Err  error
}

func (e *ReloadError) Error() string { return e.Part + ": " + e.Err.Error() }
func (e *ReloadError) Unwrap() error { return e.Err }

// reloadParts lists the parts of the ReloadErrors in err.
func reloadParts(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			parts = append(parts, reloadParts(e)...)
		}
		return parts
	}
	var re *ReloadError
	if errors.As(err, &re) {
		return []string{re.Part}
	}
	return nil
}

// joinAnd joins parts as a sentence does: "a and the b", "a, the b and
// the c".
func joinAnd(parts []string) string {
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", the ") + " and the " + parts[len(parts)-1]
}
