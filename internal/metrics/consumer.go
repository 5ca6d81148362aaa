package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Consumer series, labelled by durable consumer name.
var (
	ConsumerBatchSize = factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "batch_size",
		Help:    "Messages per fetched batch (one transaction each).",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
	}, []string{"consumer"})
	ConsumerBatchDuration = factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "batch_duration_seconds",
		Help:    "Time from a batch's fetch to its last ack, nak or dead letter.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"consumer"})
	ConsumerProcessing = factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "processing_seconds",
		Help:    "Time one message spent in the inbox check, its handler and the outbox write.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"consumer"})
	ConsumerMessages = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "messages_total",
		Help: "Settled messages by result: applied, duplicate, retried, dead_lettered.",
	}, []string{"consumer", "result"})
	ConsumerRedeliveries = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "redeliveries_total",
		Help: "Messages received again (delivery attempt > 1).",
	}, []string{"consumer"})
	ConsumerFallbacks = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "fallbacks_total",
		Help: "Batches redone with a savepoint per message because a handler failed on the set-based fast path.",
	}, []string{"consumer"})
	ConsumerDeadLetters = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "dead_letters_total",
		Help: "Messages this process dead-lettered.",
	}, []string{"consumer"})

	// Polled from JetStream's consumer info (see Poller).
	ConsumerPending = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "pending",
		Help: "Messages in the stream not yet delivered to the consumer (its lag).",
	}, []string{"consumer", "stream"})
	ConsumerAckPending = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "ack_pending",
		Help: "Messages delivered and not yet acknowledged.",
	}, []string{"consumer", "stream"})
	ConsumerRedelivered = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "consumer", Name: "redelivered",
		Help: "Messages currently out for redelivery, as JetStream counts them.",
	}, []string{"consumer", "stream"})
	DLQMessages = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "dlq", Name: "messages",
		Help: "Dead letters waiting in the DLQ stream, by the consumer that gave up.",
	}, []string{"consumer"})
)

// Results a runner reports per message (runner.Observer).
const (
	ResultApplied      = "applied"
	ResultDuplicate    = "duplicate"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
)

// ConsumerObserver records a runner's measurements; it satisfies
// runner.Observer. The zero value is ready to use and safe for concurrent
// use.
type ConsumerObserver struct{}

// ObserveBatch records one settled batch.
func (ConsumerObserver) ObserveBatch(consumer string, size int, elapsed time.Duration) {
	ConsumerBatchSize.WithLabelValues(consumer).Observe(float64(size))
	ConsumerBatchDuration.WithLabelValues(consumer).Observe(elapsed.Seconds())
}

// ObserveMessage records one settled message: its result, whether it was
// a redelivery (attempt > 1), and its processing time when its handler
// ran (handled > 0).
func (ConsumerObserver) ObserveMessage(consumer, result string, attempt uint64, handled time.Duration) {
	ConsumerMessages.WithLabelValues(consumer, result).Inc()
	if attempt > 1 {
		ConsumerRedeliveries.WithLabelValues(consumer).Inc()
	}
	if result == ResultDeadLettered {
		ConsumerDeadLetters.WithLabelValues(consumer).Inc()
	}
	if handled > 0 {
		ConsumerProcessing.WithLabelValues(consumer).Observe(handled.Seconds())
	}
}

// ObserveFallback records a batch redone on the savepoint path.
func (ConsumerObserver) ObserveFallback(consumer string) {
	ConsumerFallbacks.WithLabelValues(consumer).Inc()
}
