package ws

import (
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
)

// BenchmarkEncodeNotification is the per-message cost of the fan-out's
// decode, validation and framing (paid once per message, not per
// subscriber).
func BenchmarkEncodeNotification(b *testing.B) {
	channel := events.UserChannel("c-1")
	ev, err := events.New(events.NotificationV1, channel, map[string]any{
		"user_id": "c-1", "seq": 7, "kind": "order.confirmed", "title": "Your order is confirmed",
		"body": "We are preparing it.", "links": map[string]any{"order": "/v1/orders/7f1c4a52-5b7e-4a3f-9d0e-2c1b0a9f8e7d"},
		"order_id": "7f1c4a52-5b7e-4a3f-9d0e-2c1b0a9f8e7d",
		"source":   map[string]any{"id": "x", "type": events.OrderConfirmedV1},
	})
	if err != nil {
		b.Fatal(err)
	}
	m, err := cenats.NewMsg("ntf."+channel, ev)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := encode(m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := encode(m); err != nil {
			b.Fatal(err)
		}
	}
}
