// Package metrics holds Tradewind's Prometheus metrics: one registry for
// the process, the collectors every part of the system records into, and
// the pollers that read broker and database state off the hot path.
//
// Invariants:
//   - every series is registered once, on Registry, at package init: callers
//     never register anything, they only record (so a metric cannot be
//     missing from /metrics because a role did not start);
//   - label values are bounded sets (consumer names, route patterns, saga
//     reasons): never an id, a customer or a raw URL path;
//   - recording is cheap and never blocks: state that needs a round trip
//     (consumer lag, outbox backlog, DLQ size) is polled by a Poller.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Tradewind series.
const Namespace = "tradewind"

// Registry is the process's registry: Tradewind's series plus the Go
// runtime and process collectors. /metrics serves it.
var Registry = newRegistry()

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

var factory = promauto.With(Registry)

// Handler serves Registry in the Prometheus exposition format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// BuildInfo is 1, labelled with the running version.
var BuildInfo = factory.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: Namespace, Name: "build_info",
	Help: "Always 1, labelled with the running version.",
}, []string{"version"})

// SetVersion records the running version in BuildInfo.
func SetVersion(v string) { BuildInfo.WithLabelValues(v).Set(1) }

// PollErrors counts failed polls of broker or database state, by target
// (consumer, dlq, outbox).
var PollErrors = factory.NewCounterVec(prometheus.CounterOpts{
	Namespace: Namespace, Name: "metrics_poll_errors_total",
	Help: "Failed polls of broker or database state, by target.",
}, []string{"target"})
