package proxy

import "time"

// Metrics receives what a Handler reports; nil reports nothing.
// Implementations are called on the hot path and must be cheap and safe for
// concurrent use; internal/metrics has the Prometheus one. No label carries
// an address or a target name.
type Metrics interface {
	// Request counts one request answered, by result: "forwarded" (the
	// target's answer, any status), "bad_request" (4xx), "denied" (403),
	// "rate_limited" (429, 503), "upstream_error" (502), "upstream_timeout"
	// (504), "configs" (configs relayed) or "client_closed" (the client
	// went away before its answer; not the target's fault).
	Request(result string)
	// OHTTPRequest counts one request to an OHTTP relay resource, by the
	// results of Request ("configs": the gateway's keys relayed).
	OHTTPRequest(result string)
	// RateLimited counts a request refused for capacity (429 or 503).
	RateLimited()
	// Inflight adds delta (1 or -1) to the queries being forwarded.
	Inflight(delta int)
	// UpstreamDuration observes the time from sending a query to a target
	// to having its whole response (or failing).
	UpstreamDuration(d time.Duration)
	// Tunnel counts a CONNECT tunnel by result: "opened", "refused"
	// (malformed or disabled), "denied" (policy), "rate_limited",
	// "upstream_error" or "cut" (an opened tunnel ended by its byte or
	// time limit, or carrying no TLS; also counted as opened).
	Tunnel(result string)
	// TunnelsOpen adds delta (1 or -1) to the tunnels open now.
	TunnelsOpen(delta int)
	// TunnelBytes adds the bytes one tunnel carried, both directions.
	TunnelBytes(n int64)
}

// result is the outcome of one request: it indexes resultNames, the
// result label of Metrics.Request.
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

// tunnelResult is the outcome of one CONNECT tunnel: it indexes
// tunnelResultNames, the result label of Metrics.Tunnel.
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

// noMetrics reports nothing: the Handler's Metrics when Config has none.
type noMetrics struct{}

func (noMetrics) Request(string)                 {}
func (noMetrics) OHTTPRequest(string)            {}
func (noMetrics) RateLimited()                   {}
func (noMetrics) Inflight(int)                   {}
func (noMetrics) UpstreamDuration(time.Duration) {}
func (noMetrics) Tunnel(string)                  {}
func (noMetrics) TunnelsOpen(int)                {}
func (noMetrics) TunnelBytes(int64)              {}

// count reports one request's result.
func (h *Handler) count(r result) { h.metrics.Request(resultNames[r]) }

// countTunnel reports one tunnel's result.
func (h *Handler) countTunnel(r tunnelResult) { h.metrics.Tunnel(tunnelResultNames[r]) }
