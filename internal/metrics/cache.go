// Package metrics is the Prometheus side of the metrics interfaces that the
// role packages declare: each constructor registers a role's collectors in
// the daemon's own registry and returns a value implementing the role's
// interface. Label values come from fixed sets only: never a name, never an
// address.
package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache implements the answer cache's metrics interface (target.CacheMetrics,
// client.StubMetrics):
//
//	<prefix>_entries                 gauge
//	<prefix>_hits_total              counter
//	<prefix>_misses_total            counter
//	<prefix>_stale_answers_total     counter
//	<prefix>_failure_answers_total   counter
//	<prefix>_coalesced_total         counter
//	<prefix>_flushes_total           counter
//	<prefix>_flushed_entries_total   counter
type Cache struct {
	entries                     prometheus.Gauge
	hits, misses, stale, failed prometheus.Counter
	coalesced, flushes, flushed prometheus.Counter
}

// NewCache registers a cache's collectors, named prefix_…, e.g.
// "odoh_target_cache", in reg.
func NewCache(reg prometheus.Registerer, prefix string) (*Cache, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_" + name, Help: help})
	}
	c := &Cache{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "_entries",
			Help: "Entries in the answer cache: answers, stale answers and cached failures.",
		}),
		hits:      counter("hits_total", "Queries answered from a live cache entry."),
		misses:    counter("misses_total", "Queries forwarded upstream (coalesced ones included)."),
		stale:     counter("stale_answers_total", "Expired answers served because the upstream failed (RFC 8767)."),
		failed:    counter("failure_answers_total", "Queries answered with a cached resolution failure (RFC 9520), without asking upstream."),
		coalesced: counter("coalesced_total", "Queries that joined an identical query in flight instead of asking upstream."),
		flushes:   counter("flushes_total", "Cache flushes through the admin listener."),
		flushed:   counter("flushed_entries_total", "Entries removed by cache flushes."),
	}
	for _, col := range []prometheus.Collector{c.entries, c.hits, c.misses, c.stale, c.failed, c.coalesced, c.flushes, c.flushed} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("registering cache metrics: %w", err)
		}
	}
	return c, nil
}

// CacheHit counts a query answered from a live entry.
func (c *Cache) CacheHit() { c.hits.Inc() }

// CacheMiss counts a query forwarded upstream.
func (c *Cache) CacheMiss() { c.misses.Inc() }

// CacheStale counts a stale answer served.
func (c *Cache) CacheStale() { c.stale.Inc() }

// CacheFailure counts a query answered with a cached failure.
func (c *Cache) CacheFailure() { c.failed.Inc() }

// CacheCoalesced counts a query that joined one in flight.
func (c *Cache) CacheCoalesced() { c.coalesced.Inc() }

// CacheFlush counts a flush and the entries it removed.
func (c *Cache) CacheFlush(removed int) {
	c.flushes.Inc()
	c.flushed.Add(float64(removed))
}

// CacheEntries sets the number of entries.
func (c *Cache) CacheEntries(n int) { c.entries.Set(float64(n)) }
