package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
)

// watch follows the EVENTS stream from now on: inventory.restocked marks
// seeded SKUs, orders.confirmed and orders.cancelled end orders, and the
// stream's timestamps of every saga event give the per-hop breakdown. An
// ordered consumer is used because it is recreated after a reconnect
// (a NATS restart) and resumes after the last sequence it delivered, so
// no terminal event is missed.
func (g *Generator) watch(ctx context.Context) (stop func(), err error) {
	confirmed := events.MustLookup(events.OrderConfirmedV1).SubjectFilter()
	cancelled := events.MustLookup(events.OrderCancelledV1).SubjectFilter()
	restocked := events.MustLookup(events.RestockedV1).SubjectFilter()
	filters := []string{confirmed, cancelled, restocked}
	for _, t := range hopEvents {
		filters = append(filters, events.MustLookup(t).SubjectFilter())
	}
	cons, err := g.js.OrderedConsumer(ctx, broker.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("load: watch the %s stream: %w", broker.StreamEvents, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		at := time.Now()
		parts := strings.Split(m.Subject(), ".")
		if len(parts) != 4 {
			return
		}
		id, name := parts[3], parts[1]+"."+parts[2]
		if md, err := m.Metadata(); err == nil && name != "inventory.restocked" {
			g.stored(id, name, md.Timestamp)
		}
		switch name {
		case "inventory.restocked":
			g.mu.Lock()
			delete(g.unseeded, id)
			g.mu.Unlock()
		case "orders.confirmed":
			g.record(id, "confirmed", at)
		case "orders.cancelled":
			var c events.OrderCancelled
			if err := json.Unmarshal(m.Data(), &c); err != nil || c.Reason == "" {
				c.Reason = "unknown"
			}
			g.record(id, "cancelled:"+c.Reason, at)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load: watch the %s stream: %w", broker.StreamEvents, err)
	}
	return cc.Stop, nil
}

// hopEvents are the saga's intermediate events, watched for the per-hop
// breakdown only.
var hopEvents = []string{events.OrderPlacedV1, events.StockReservedV1, events.PaymentAuthorizedV1}

// hops are the happy path's steps, from publish (the load's clock) to
// each event's storing in the stream (the server's clock: load and NATS
// on one machine share it; across machines the first hop carries their
// skew).
var hops = [][2]string{
	{"publish", "orders.placed"},
	{"orders.placed", "inventory.reserved"},
	{"inventory.reserved", "payments.authorized"},
	{"payments.authorized", "orders.confirmed"},
}
