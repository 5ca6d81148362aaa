package sagas_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/sagatest"
)

// TestSagaOutcomesAreCountedOnceAfterCommit checks the saga metrics move
// when orders end: one completed, one cancelled for stock.
func TestSagaOutcomesAreCountedOnceAfterCommit(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	completed := metrics.SagaOutcomes.WithLabelValues(metrics.SagaCompleted, "confirmed")
	outOfStock := metrics.SagaOutcomes.WithLabelValues(metrics.SagaCancelled, events.CancelOutOfStock)
	c0, o0 := testutil.ToFloat64(completed), testutil.ToFloat64(outOfStock)
	d0 := durations(t, metrics.SagaCompleted)

	a := sku(t, "a")
	s.Restock(a, 1)
	ok := s.PlaceOrder("c-metrics", line(a, 1, 900))
	s.WaitOrder(ok, events.StatusConfirmed, wait)
	no := s.PlaceOrder("c-metrics", line(a, 5, 900))
	s.WaitOrder(no, events.StatusCancelled, wait)

	s.Eventually(wait, "saga outcome counters", func() bool {
		return testutil.ToFloat64(completed) == c0+1 && testutil.ToFloat64(outOfStock) == o0+1
	})
	if got := durations(t, metrics.SagaCompleted); got != d0+1 {
		t.Errorf("completed saga durations observed: %d more, want 1", got-d0)
	}
}

// durations is how many saga durations the histogram holds for outcome.
func durations(t *testing.T, outcome string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.SagaDuration.WithLabelValues(outcome).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
