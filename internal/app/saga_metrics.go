package app

import (
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/metrics"
)

// observeSagaOutcomes records finished sagas from the events a commit
// emitted: orders.confirmed ends a saga as completed, orders.cancelled of
// a pending order as cancelled (timed_out for the deadline). A cancellation
// after confirmation is a refund, not a saga outcome. Called only after
// commit, so rolled-back attempts never count.
func observeSagaOutcomes(emitted []*event.Event) {
	for _, e := range emitted {
		switch e.Type() {
		case events.OrderConfirmedV1:
			var d events.OrderConfirmed
			if events.DecodeData(e, &d) == nil {
				metrics.SagaFinished(metrics.SagaCompleted, "confirmed", since(d.PlacedAt, d.ConfirmedAt))
			}
		case events.OrderCancelledV1:
			var d events.OrderCancelled
			if events.DecodeData(e, &d) != nil || d.PreviousStatus == events.StatusConfirmed {
				continue
			}
			outcome := metrics.SagaCancelled
			if d.Reason == events.CancelTimeout {
				outcome = metrics.SagaTimedOut
			}
			metrics.SagaFinished(outcome, d.Reason, since(d.PlacedAt, d.CancelledAt))
		}
	}
}

// since is end − start for RFC 3339 times, 0 when either is missing.
func since(start, end string) time.Duration {
	s, err1 := time.Parse(time.RFC3339Nano, start)
	e, err2 := time.Parse(time.RFC3339Nano, end)
	if err1 != nil || err2 != nil {
		return 0
	}
	return e.Sub(s)
}
