package metrics

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target implements target.Metrics and target.UpstreamMetrics, and holds
// the gauges the odoh-target daemon sets itself:
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
type Target struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	upstreamUp       *prometheus.GaugeVec
	upstreamMismatch *prometheus.CounterVec
	zoneRecords      prometheus.Gauge

	// series caches the request series by label values, so that the hot
	// path does no hashing inside the vectors and takes no lock.
	series sync.Map // requestKey → *requestSeries
}

type requestKey struct{ protocol, transport, result string }

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// latencyBuckets spans a local-zone answer (tens of µs) to a slow upstream.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// NewTarget registers a target's collectors in reg. epoch, if not nil,
// backs the key epoch gauge (target.Keyring.Epoch).
func NewTarget(reg prometheus.Registerer, epoch func() int64) (*Target, error) {
	m := &Target{
		requests: counterVec("odoh_target_requests_total",
			"DNS requests by protocol (odoh, doh, ohttp), HTTP transport (h1, h2, h3) and result.", "protocol", "transport", "result"),
		duration: histogramVec("odoh_target_request_duration_seconds",
			"Time from reading a DNS request to writing its answer, by protocol and transport.", latencyBuckets, "protocol", "transport"),
		upstreamDuration: histogramVec("odoh_target_upstream_duration_seconds",
			"Latency of upstream exchanges, by upstream index in the configured list.", latencyBuckets, "upstream"),
		upstreamErrors: counterVec("odoh_target_upstream_errors_total",
			"Failed upstream exchanges (errors, timeouts, and answers with an rcode other than NOERROR, NXDOMAIN or YXDOMAIN), by upstream index.", "upstream"),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "odoh_target_upstream_up",
			Help: "Whether an upstream is up (1) or down for a backoff after repeated failures (0), by upstream index.",
		}, []string{"upstream"}),
		upstreamMismatch: counterVec("odoh_target_upstream_mismatched_total",
			"Answers from an upstream dropped because their ID, name, type or class was not the query's (late or forged answers), by upstream index.", "upstream"),
		zoneRecords: gauge("odoh_target_local_zone_records", "Records in the local zone (0 without one)."),
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.upstreamDuration, m.upstreamErrors, m.upstreamUp, m.upstreamMismatch, m.zoneRecords}
	if epoch != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "odoh_target_key_epoch",
			Help: "Current key epoch: floor(unix time / rotation period).",
		}, func() float64 { return float64(epoch()) }))
	}
	if err := register(reg, cs...); err != nil {
		return nil, fmt.Errorf("registering target metrics: %w", err)
	}
	return m, nil
}

// Request counts one DNS request and observes its duration.
func (m *Target) Request(protocol, transport, result string, d time.Duration) {
	k := requestKey{protocol, transport, result}
	s, ok := m.series.Load(k)
	if !ok {
		s, _ = m.series.LoadOrStore(k, &requestSeries{
			count:    m.requests.WithLabelValues(protocol, transport, result),
			duration: m.duration.WithLabelValues(protocol, transport),
		})
	}
	rs := s.(*requestSeries)
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

// UpstreamExchange observes one exchange with upstream i.
func (m *Target) UpstreamExchange(i int, d time.Duration, failed bool) {
	l := strconv.Itoa(i)
	m.upstreamDuration.WithLabelValues(l).Observe(d.Seconds())
	if failed {
		m.upstreamErrors.WithLabelValues(l).Inc()
	}
}

// UpstreamUp sets upstream i's health gauge.
func (m *Target) UpstreamUp(i int, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.upstreamUp.WithLabelValues(strconv.Itoa(i)).Set(v)
}

// UpstreamMismatch counts an answer of upstream i that was dropped.
func (m *Target) UpstreamMismatch(i int) {
	m.upstreamMismatch.WithLabelValues(strconv.Itoa(i)).Inc()
}

// SetZoneRecords sets the size of the local zone.
func (m *Target) SetZoneRecords(n int) { m.zoneRecords.Set(float64(n)) }

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// register registers every collector in reg, stopping at the first error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
