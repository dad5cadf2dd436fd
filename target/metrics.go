package target

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Protocol, transport and result label values of the request metrics.
// The sets are fixed, so the number of series is bounded.
const (
	protoODoH = iota
	protoDoH
	protoOHTTP
	numProtos
)

const (
	transportH1 = iota
	transportH2
	transportH3
	numTransports
)

// Result is the outcome of one request, the result label of
// odoh_target_requests_total.
type Result int

// Request outcomes.
const (
	ResultOK                   Result = iota // answered (any DNS rcode from the resolver)
	ResultServFail                           // resolution failed: SERVFAIL in a 200
	ResultBadRequest                         // 400: malformed, undecryptable, unparsable
	ResultKeyMismatch                        // 401 (ODoH), 400 ohttp-key problem (OHTTP): unknown key ID
	ResultMethodNotAllowed                   // 405
	ResultUnsupportedMediaType               // 415
	ResultTooLarge                           // 413
	ResultInternalError                      // 500
	numResults
)

var (
	protoNames     = [numProtos]string{"odoh", "doh", "ohttp"}
	transportNames = [numTransports]string{"h1", "h2", "h3"}
	resultNames    = [numResults]string{"ok", "servfail", "bad_request", "key_mismatch",
		"method_not_allowed", "unsupported_media_type", "too_large", "internal_error"}
)

// String returns the label value of r.
func (r Result) String() string {
	if r < 0 || r >= numResults {
		return "unknown"
	}
	return resultNames[r]
}

// Metrics holds the Prometheus collectors of a target. Every label value
// comes from a fixed set (protocol, transport, result, upstream index):
// no addresses, no names. A nil *Metrics records nothing.
//
//	odoh_target_requests_total{protocol,transport,result}      counter
//	odoh_target_request_duration_seconds{protocol,transport}   histogram
//	odoh_target_upstream_duration_seconds{upstream}            histogram
//	odoh_target_upstream_errors_total{upstream}                counter
//	odoh_target_upstream_up{upstream}                          gauge (1 up, 0 down)
//	odoh_target_upstream_mismatched_total{upstream}            counter
//	odoh_target_key_epoch                                      gauge
//	odoh_target_local_zone_records                             gauge
//
// upstream is the index of the upstream in the -upstream list.
type Metrics struct {
	requests [numProtos][numTransports][numResults]prometheus.Counter
	duration [numProtos][numTransports]prometheus.Observer

	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	upstreamUp       *prometheus.GaugeVec
	upstreamMismatch *prometheus.CounterVec
	zoneRecords      prometheus.Gauge
}

// latencyBuckets spans a local-zone answer (tens of µs) to a slow upstream.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// NewMetrics creates the target's collectors and registers them with reg.
// keys, if not nil, backs the key epoch gauge.
func NewMetrics(reg prometheus.Registerer, keys *Keyring) (*Metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "odoh_target_requests_total",
		Help: "DNS requests by protocol (odoh, doh, ohttp), HTTP transport (h1, h2, h3) and result.",
	}, []string{"protocol", "transport", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "odoh_target_request_duration_seconds",
		Help:    "Time from reading a DNS request to writing its answer, by protocol and transport.",
		Buckets: latencyBuckets,
	}, []string{"protocol", "transport"})
	m := &Metrics{
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odoh_target_upstream_duration_seconds",
			Help:    "Latency of upstream exchanges, by upstream index in the configured list.",
			Buckets: latencyBuckets,
		}, []string{"upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoh_target_upstream_errors_total",
			Help: "Failed upstream exchanges (errors and timeouts), by upstream index.",
		}, []string{"upstream"}),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "odoh_target_upstream_up",
			Help: "Whether an upstream is up (1) or down for a backoff after repeated failures (0), by upstream index.",
		}, []string{"upstream"}),
		upstreamMismatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoh_target_upstream_mismatched_total",
			Help: "Answers from an upstream dropped because their ID, name, type or class was not the query's (late or forged answers), by upstream index.",
		}, []string{"upstream"}),
		zoneRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoh_target_local_zone_records",
			Help: "Records in the local zone (0 without one).",
		}),
	}
	cs := []prometheus.Collector{requests, duration, m.upstreamDuration, m.upstreamErrors, m.upstreamUp, m.upstreamMismatch, m.zoneRecords}
	if keys != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "odoh_target_key_epoch",
			Help: "Current key epoch: floor(unix time / rotation period).",
		}, func() float64 { return float64(keys.Epoch()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	// Resolve every series once, so the hot path only increments.
	for p := range numProtos {
		for t := range numTransports {
			m.duration[p][t] = duration.WithLabelValues(protoNames[p], transportNames[t])
			for r := range numResults {
				m.requests[p][t][r] = requests.WithLabelValues(protoNames[p], transportNames[t], resultNames[r])
			}
		}
	}
	return m, nil
}

func (m *Metrics) observeRequest(proto, transport int, r Result, d time.Duration) {
	if m == nil {
		return
	}
	m.requests[proto][transport][r].Inc()
	m.duration[proto][transport].Observe(d.Seconds())
}

func (m *Metrics) observeUpstream(i int, d time.Duration, err error) {
	if m == nil {
		return
	}
	l := upstreamLabel(i)
	m.upstreamDuration.WithLabelValues(l).Observe(d.Seconds())
	if err != nil {
		m.upstreamErrors.WithLabelValues(l).Inc()
	}
}

func (m *Metrics) observeMismatch(i int) {
	if m != nil {
		m.upstreamMismatch.WithLabelValues(upstreamLabel(i)).Inc()
	}
}

func (m *Metrics) setUpstreamUp(i int, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.upstreamUp.WithLabelValues(upstreamLabel(i)).Set(v)
}

// SetZoneRecords records the size of the local zone.
func (m *Metrics) SetZoneRecords(n int) {
	if m != nil {
		m.zoneRecords.Set(float64(n))
	}
}
