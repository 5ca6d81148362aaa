package sagas_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/sagatest"
)

// TestSagaBurstIsConfirmedAndCommittedSetBased: orders placed while the
// orders participant is down reach it at once, so their authorizations
// and then their confirmations travel in batches, which confirm_order and
// commit_stock take set-based (orders sharing SKUs: inventory changes
// once per SKU per batch). Every order ends confirmed with its stock
// committed exactly once and nothing dead-lettered.
func TestSagaBurstIsConfirmedAndCommittedSetBased(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"inventory", "payments"}, Deadline: time.Minute})
	a, b := sku(t, "a"), sku(t, "b")
	s.Restock(a, 100)
	s.Restock(b, 100)
	count0, sum0 := batchSizes(t, "orders-events")

	const n = 24
	ids := make([]string, n)
	var units int64
	for i := range ids {
		q := int64(1 + i%3)
		units += q
		ids[i] = s.PlaceOrder("c-burst", line(a, q, 500), line(b, 1, 700))
	}
	s.StartRole("orders")
	for _, id := range ids {
		s.WaitOrder(id, events.StatusConfirmed, wait)
		s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed",
			"payments.captured", "inventory.committed")
	}
	wantStock(t, s, a, 100-units, 0)
	wantStock(t, s, b, 100-n, 0)
	if d := s.DeadLetters(); d != 0 {
		t.Errorf("%d dead letters, want none", d)
	}
	// The burst came in batches: at least one batch of the orders'
	// events consumer (here only payments.authorized) held several.
	count, sum := batchSizes(t, "orders-events")
	if sum-sum0 <= float64(count-count0) {
		t.Errorf("orders-events: %v messages in %d batches: no batch of several authorizations", sum-sum0, count-count0)
	}
	t.Logf("orders-events: %v messages in %d batches", sum-sum0, count-count0)
}

// batchSizes is the consumer's batch size histogram: batches and messages.
func batchSizes(t *testing.T, consumer string) (count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	if err := metrics.ConsumerBatchSize.WithLabelValues(consumer).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}
