package proxy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// result is the bounded label of odoh_proxy_requests_total.
type result int

const (
	resForwarded       result = iota // the target answered; relayed
	resBadRequest                    // malformed request (4xx)
	resDenied                        // outside the policy (403)
	resRateLimited                   // 429
	resUpstreamError                 // 502
	resUpstreamTimeout               // 504
	resConfigs                       // configs relayed
	resClientClosed                  // the client went away before its answer
	numResults
)

var resultNames = [numResults]string{
	"forwarded", "bad_request", "denied", "rate_limited", "upstream_error", "upstream_timeout", "configs", "client_closed",
}

// tunnelResult is the bounded label of odoh_proxy_tunnels_total.
type tunnelResult int

const (
	tunnelOpened        tunnelResult = iota // a tunnel was opened
	tunnelRefused                           // malformed, or tunnels disabled (4xx)
	tunnelDenied                            // outside the policy (403)
	tunnelRateLimited                       // 429
	tunnelUpstreamError                     // the target could not be reached (502, 504)
	tunnelCut                               // an opened tunnel was cut by a limit (bytes, time, not TLS)
	numTunnelResults
)

var tunnelResultNames = [numTunnelResults]string{
	"opened", "refused", "denied", "rate_limited", "upstream_error", "cut",
}

// metrics are resolved once so the hot path only does atomic adds. No
// label carries an address or a target name.
type metrics struct {
	results          [numResults]prometheus.Counter
	rateLimited      prometheus.Counter
	inflight         prometheus.Gauge
	upstreamDuration prometheus.Histogram
	tunnels          [numTunnelResults]prometheus.Counter
	tunnelsOpen      prometheus.Gauge
	tunnelBytes      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "odoh_proxy_requests_total",
		Help: "Requests answered, by result: forwarded (the target's answer, any status), bad_request, denied, rate_limited, upstream_error, upstream_timeout, configs, client_closed (the client went away first; not the target's fault).",
	}, []string{"result"})
	m := &metrics{
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "odoh_proxy_rate_limited_total",
			Help: "Requests refused for capacity: 429 (per-client rate limit, per-client or global concurrency cap) or 503 (configs fetch cap).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoh_proxy_inflight_requests",
			Help: "Queries being forwarded now.",
		}),
		upstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "odoh_proxy_upstream_duration_seconds",
			Help:    "Time from sending a query to a target to having its whole response (or failing).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for i, n := range resultNames {
		m.results[i] = requests.WithLabelValues(n)
	}
	tunnels := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "odoh_proxy_tunnels_total",
		Help: "CONNECT tunnels for configs fetches, by result: opened, refused (malformed or disabled), denied (policy), rate_limited, upstream_error, cut (an opened tunnel ended by its byte or time limit, or carrying no TLS; also counted as opened).",
	}, []string{"result"})
	for i, n := range tunnelResultNames {
		m.tunnels[i] = tunnels.WithLabelValues(n)
	}
	m.tunnelsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "odoh_proxy_tunnels_open",
		Help: "CONNECT tunnels open now.",
	})
	m.tunnelBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "odoh_proxy_tunnel_bytes_total",
		Help: "Bytes carried by CONNECT tunnels, both directions.",
	})
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{requests, m.rateLimited, m.inflight, m.upstreamDuration, tunnels, m.tunnelsOpen, m.tunnelBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy: registering metrics: %w", err)
		}
	}
	return m, nil
}

// count reports one request's result.
func (h *Handler) count(r result) { h.metrics.results[r].Inc() }
