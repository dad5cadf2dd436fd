package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/connlimit"
	"github.com/odohd/odoh/internal/httpserve"
)

// Conns implements httpserve.Metrics (and so connlimit.Metrics):
//
//	<prefix>_connections_refused_total{reason}   counter
//	<prefix>_connections_closed_total{reason}    counter
//	<prefix>_connections_open                    gauge (with an open func)
//
// The reasons are connlimit.RefusedReasons (max_conns,
// max_conns_per_client, proxy_header_untrusted, proxy_header_invalid) and
// httpserve.ClosedReasons (reset_budget, late_body); every series exists
// from the start, at 0.
type Conns struct {
	refused, closed map[string]prometheus.Counter
}

// NewConns registers the connection collectors, named prefix_…, e.g.
// "odoh_target", in reg. open, if not nil, backs the gauge of connections
// held (httpserve.Server.ConnStats).
func NewConns(reg prometheus.Registerer, prefix string, open func() float64) (*Conns, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "_connections_refused_total",
		Help: "Connections refused before TLS, by reason: max_conns (the overall cap), max_conns_per_client (one address's cap), proxy_header_untrusted (a PROXY protocol header from a source not trusted to send one), proxy_header_invalid (a trusted balancer's connection without a valid header).",
	}, []string{"reason"})
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "_connections_closed_total",
		Help: "Connections closed by a rule, by reason: reset_budget (too many streams reset by the client or refused for a limit), late_body (a request body missed its read deadline, HTTP/1.1 and HTTP/2).",
	}, []string{"reason"})
	cs := []prometheus.Collector{refused, closed}
	if open != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: prefix + "_connections_open",
			Help: "Connections held now, TCP and QUIC together (those the connection caps count).",
		}, open))
	}
	if err := register(reg, cs...); err != nil {
		return nil, fmt.Errorf("registering connection metrics: %w", err)
	}
	c := &Conns{refused: make(map[string]prometheus.Counter), closed: make(map[string]prometheus.Counter)}
	for _, r := range connlimit.RefusedReasons {
		c.refused[r] = refused.WithLabelValues(r)
	}
	for _, r := range httpserve.ClosedReasons {
		c.closed[r] = closed.WithLabelValues(r)
	}
	return c, nil
}

// ConnRefused counts a refused connection. A reason outside the known
// ones is not counted: the label set stays bounded.
func (c *Conns) ConnRefused(reason string) {
	if m, ok := c.refused[reason]; ok {
		m.Inc()
	}
}

// ConnClosed counts a connection closed by a rule.
func (c *Conns) ConnClosed(reason string) {
	if m, ok := c.closed[reason]; ok {
		m.Inc()
	}
}
