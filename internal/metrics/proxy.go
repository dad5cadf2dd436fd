package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Proxy implements proxy.Metrics:
//
//	odoh_proxy_requests_total{result}           counter
//	odoh_proxy_ohttp_requests_total{result}     counter
//	odoh_proxy_rate_limited_total               counter
//	odoh_proxy_inflight_requests                gauge
//	odoh_proxy_upstream_duration_seconds        histogram
//	odoh_proxy_tunnels_total{result}            counter
//	odoh_proxy_tunnels_open                     gauge
//	odoh_proxy_tunnel_bytes_total               counter
type Proxy struct {
	requests         *prometheus.CounterVec
	ohttpRequests    *prometheus.CounterVec
	rateLimited      prometheus.Counter
	inflight         prometheus.Gauge
	upstreamDuration prometheus.Histogram
	tunnels          *prometheus.CounterVec
	tunnelsOpen      prometheus.Gauge
	tunnelBytes      prometheus.Counter

	results, ohttpResults, tunnelResults sync.Map // result label → prometheus.Counter
}

// NewProxy registers a proxy's collectors in reg.
func NewProxy(reg prometheus.Registerer) (*Proxy, error) {
	m := &Proxy{
		requests: counterVec("odoh_proxy_requests_total",
			"Requests answered, by result: forwarded (the target's answer, any status), bad_request, denied, rate_limited, upstream_error, upstream_timeout, configs, client_closed (the client went away first; not the target's fault).", "result"),
		ohttpRequests: counterVec("odoh_proxy_ohttp_requests_total",
			"Requests to the Oblivious HTTP relay resources, by the results of odoh_proxy_requests_total (configs: a gateway's key configuration relayed).", "result"),
		rateLimited: counter("odoh_proxy_rate_limited_total",
			"Requests refused for capacity: 429 (per-client rate limit, per-client or global concurrency cap) or 503 (configs fetch cap)."),
		inflight: gauge("odoh_proxy_inflight_requests", "Queries being forwarded now."),
		upstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "odoh_proxy_upstream_duration_seconds",
			Help:    "Time from sending a query to a target to having its whole response (or failing).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		tunnels: counterVec("odoh_proxy_tunnels_total",
			"CONNECT tunnels for configs fetches, by result: opened, refused (malformed or disabled), denied (policy), rate_limited, upstream_error, cut (an opened tunnel ended by its byte or time limit, or carrying no TLS; also counted as opened).", "result"),
		tunnelsOpen: gauge("odoh_proxy_tunnels_open", "CONNECT tunnels open now."),
		tunnelBytes: counter("odoh_proxy_tunnel_bytes_total", "Bytes carried by CONNECT tunnels, both directions."),
	}
	if err := register(reg, m.requests, m.ohttpRequests, m.rateLimited, m.inflight, m.upstreamDuration, m.tunnels, m.tunnelsOpen, m.tunnelBytes); err != nil {
		return nil, fmt.Errorf("registering proxy metrics: %w", err)
	}
	return m, nil
}

// Request counts one answered request by result.
func (m *Proxy) Request(result string) { counterOf(&m.results, m.requests, result).Inc() }

// OHTTPRequest counts one request to an OHTTP relay resource by result.
func (m *Proxy) OHTTPRequest(result string) {
	counterOf(&m.ohttpResults, m.ohttpRequests, result).Inc()
}

// Tunnel counts one CONNECT tunnel by result.
func (m *Proxy) Tunnel(result string) { counterOf(&m.tunnelResults, m.tunnels, result).Inc() }

// TunnelsOpen adds delta to the tunnels open now.
func (m *Proxy) TunnelsOpen(delta int) { m.tunnelsOpen.Add(float64(delta)) }

// TunnelBytes adds the bytes one tunnel carried.
func (m *Proxy) TunnelBytes(n int64) { m.tunnelBytes.Add(float64(n)) }

// counterOf returns vec's counter for one label value, cached in cache so
// that the hot path neither hashes inside the vector nor takes its lock.
func counterOf(cache *sync.Map, vec *prometheus.CounterVec, label string) prometheus.Counter {
	c, ok := cache.Load(label)
	if !ok {
		c, _ = cache.LoadOrStore(label, vec.WithLabelValues(label))
	}
	return c.(prometheus.Counter)
}

// RateLimited counts a request refused for capacity.
func (m *Proxy) RateLimited() { m.rateLimited.Inc() }

// Inflight adds delta (1 or -1) to the queries being forwarded.
func (m *Proxy) Inflight(delta int) { m.inflight.Add(float64(delta)) }

// UpstreamDuration observes one exchange with a target.
func (m *Proxy) UpstreamDuration(d time.Duration) { m.upstreamDuration.Observe(d.Seconds()) }
