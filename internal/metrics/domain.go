package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Saga series. Outcome is how an order ended (completed, cancelled,
// timed_out); reason says why, from a small fixed set the saga defines
// (e.g. payment_declined, out_of_stock, deadline).
var (
	SagaOutcomes = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "saga", Name: "outcomes_total",
		Help: "Finished order sagas by outcome and reason.",
	}, []string{"outcome", "reason"})
	SagaDuration = factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "saga", Name: "duration_seconds",
		Help:    "Time from an order's placement to its final state, by outcome.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"outcome"})
)

// Saga outcomes.
const (
	SagaCompleted = "completed"
	SagaCancelled = "cancelled"
	SagaTimedOut  = "timed_out"
)

// SagaFinished records one saga that ended with outcome for reason after
// took (0 when unknown: only the counter moves).
func SagaFinished(outcome, reason string, took time.Duration) {
	SagaOutcomes.WithLabelValues(outcome, reason).Inc()
	if took > 0 {
		SagaDuration.WithLabelValues(outcome).Observe(took.Seconds())
	}
}

// ProjectionLag is how far a read model trails the events it is built
// from: now minus the time of the last event it applied.
var ProjectionLag = factory.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: Namespace, Subsystem: "projection", Name: "lag_seconds",
	Help: "Age of the newest event a projection applied, when it applied it.",
}, []string{"projection"})

// SetProjectionLag records that projection applied an event of eventTime now.
func SetProjectionLag(projection string, eventTime time.Time) {
	ProjectionLag.WithLabelValues(projection).Set(max(time.Since(eventTime).Seconds(), 0))
}

// WebSocket series.
var (
	WSConnections = factory.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "ws", Name: "connections",
		Help: "Open WebSocket connections.",
	})
	WSOverflows = factory.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "ws", Name: "queue_overflows_total",
		Help: "Times a connection's send queue was full (slow client).",
	})
	WSDelivered = factory.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "ws", Name: "delivered_total",
		Help: "Messages written to WebSocket clients.",
	})
	// WSDropped counts notifications from ntf.> that were never pushed:
	// not a CloudEvent (decode), not a notification (type), failing its
	// schema (schema), or on another channel's subject (subject).
	WSDropped = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "ws", Name: "notifications_dropped_total",
		Help: "Notifications dropped before WebSocket fan-out because they failed validation, by reason.",
	}, []string{"reason"})
)

// RateLimitRejections counts requests refused by a rate limiter, by scope
// (a fixed name such as "api" or "ws", never a client id).
var RateLimitRejections = factory.NewCounterVec(prometheus.CounterOpts{
	Namespace: Namespace, Subsystem: "ratelimit", Name: "rejections_total",
	Help: "Requests rejected by a rate limiter, by scope.",
}, []string{"scope"})

// Circuit-breaker states as the gauge reports them (gobreaker's order).
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// CircuitBreakerState is 0 closed, 1 half-open, 2 open, per breaker.
var CircuitBreakerState = factory.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: Namespace, Subsystem: "circuit_breaker", Name: "state",
	Help: "Circuit-breaker state: 0 closed, 1 half-open, 2 open.",
}, []string{"name"})

// SetBreakerState records breaker name's state by its name as gobreaker
// prints it ("closed", "half-open", "open"); it fits gobreaker's
// OnStateChange: metrics.SetBreakerState(name, to.String()).
func SetBreakerState(name, state string) {
	v := BreakerClosed
	switch state {
	case "half-open":
		v = BreakerHalfOpen
	case "open":
		v = BreakerOpen
	}
	CircuitBreakerState.WithLabelValues(name).Set(float64(v))
}
