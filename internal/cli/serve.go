package cli

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Server is what a daemon serves: internal/httpserve's and internal/admin's
// servers both are one.
type Server interface {
	// Serve blocks until Shutdown (then it returns nil), a serving error,
	// or the cancellation of ctx, after which it drains and returns nil.
	Serve(ctx context.Context) error
	// Shutdown stops the server gracefully until ctx is done.
	Shutdown(ctx context.Context) error
}

// Group serves several servers as one: a daemon's query listener and its
// admin listener live and die together. If one stops serving before
// Shutdown (a serving error, or a return for no reason), Serve stops the
// others (each refuses new connections at once and drains what it was
// answering) and returns the error: a daemon whose queries are no longer
// served must not keep answering /healthz and /readyz, it must exit
// non-zero so that it gets restarted.
//
// Use Serve as Hooks.Start and Shutdown in Hooks.Drain.
type Group struct {
	servers  []Server
	stopping atomic.Bool
}

// NewGroup returns a Group of servers.
func NewGroup(servers ...Server) *Group {
	return &Group{servers: servers}
}

// Serve runs every server's Serve until all have returned. It returns nil
// after Shutdown or the cancellation of ctx, or else the error of the first
// server that stopped on its own.
func (g *Group) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(g.servers))
	for _, s := range g.servers {
		go func() {
			err := s.Serve(ctx)
			if err == nil && !g.stopping.Load() && ctx.Err() == nil {
				err = fmt.Errorf("%T stopped serving unexpectedly", s)
			}
			errc <- err
		}()
	}
	var first error
	for range g.servers {
		switch err := <-errc; {
		case err == nil || first != nil:
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			// The caller cancelled ctx (ours is cancelled only after a
			// failure): not a failure of this server.
		default:
			first = err
			cancel() // stop the others
		}
	}
	return first
}

// Shutdown shuts the servers down one after the other, in the order given
// to NewGroup, until ctx is done, and returns their errors joined. Put the
// admin server last: its /metrics stays up while queries drain.
func (g *Group) Shutdown(ctx context.Context) error {
	g.stopping.Store(true)
	var errs []error
	for _, s := range g.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
