package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outbox series.
var (
	OutboxBacklog = factory.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "outbox", Name: "backlog",
		Help: "Committed outbox rows not yet deleted: unpublished, or published since the last delete round (polled).",
	})
	OutboxOldestAge = factory.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "outbox", Name: "oldest_age_seconds",
		Help: "Age of the oldest unpublished outbox row, 0 when empty (polled).",
	})
	OutboxPublishDuration = factory.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "outbox", Name: "publish_seconds",
		Help:    "Time from a relay round's first publish to its last JetStream ack.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	TableDeadTuples = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "table", Name: "dead_tuples",
		Help: "Dead row versions of a Tradewind table, from pg_stat_user_tables (polled).",
	}, []string{"table"})
	TableLiveTuples = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "table", Name: "live_tuples",
		Help: "Live rows of a Tradewind table, from pg_stat_user_tables (polled).",
	}, []string{"table"})
	OutboxPublished = factory.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "outbox", Name: "published_total",
		Help: "Outbox rows published and acknowledged by JetStream.",
	})
)

// ObserveOutboxPublish records one relay round that published rows
// messages in elapsed (it matches outbox.RelayConfig.Observe).
func ObserveOutboxPublish(rows int, elapsed time.Duration) {
	OutboxPublishDuration.Observe(elapsed.Seconds())
	OutboxPublished.Add(float64(rows))
}
