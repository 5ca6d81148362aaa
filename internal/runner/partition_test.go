package runner_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestPartitionConsumersSplitOrdersAndKeepTheirName: a runner per
// partition of PARTITIONS handles exactly the events of its partition,
// sees them on the subject they were published on, and records them in
// the inbox under the plan's name, not the partition consumer's.
func TestPartitionConsumersSplitOrdersAndKeepTheirName(t *testing.T) {
	s := newSystem(t)
	ctx := context.Background()
	topo := broker.DefaultTopology()
	topo.Partitions = 2
	if err := broker.EnsureStreams(ctx, s.js, topo); err != nil {
		t.Fatal(err)
	}
	name := "partitioned-" + uuid.NewString()[:8]
	var mu sync.Mutex
	seenBy := map[string]int{} // order id -> partition that handled it
	subjects := map[string]string{}
	for p := range 2 {
		h := runner.HandlerFunc(func(ctx context.Context, _ pgx.Tx, ev *event.Event) ([]*event.Event, error) {
			d, _ := runner.DeliveryFrom(ctx)
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := seenBy[ev.Subject()]; ok && prev != p {
				t.Errorf("order %s handled by partitions %d and %d", ev.Subject(), prev, p)
			}
			seenBy[ev.Subject()], subjects[ev.ID()] = p, d.Subject
			return nil, nil
		})
		s.start(runner.Config{
			Name: name, Durable: name + "-p" + strconv.Itoa(p), Stream: broker.StreamPartitions,
			FilterSubjects: []string{broker.PartitionFilter(p, events.MustLookup(events.OrderCancelledV1).SubjectFilter())},
			Trusted:        true,
		}, h)
	}
	const orders = 20
	var ids []string
	for range orders {
		order := uuid.NewString()
		for range 2 { // two events per order
			e, err := events.New(events.OrderCancelledV1, order, events.OrderCancelled{OrderID: order, Reason: "test"})
			if err != nil {
				t.Fatal(err)
			}
			publishRaw(t, s.js, e, e.ID())
			ids = append(ids, e.ID())
		}
	}
	testenv.Eventually(t, 30*time.Second, "every event in the inbox under the plan's name", func() bool {
		return s.count(`SELECT count(*) FROM core.inbox WHERE consumer = $1 AND event_id = ANY($2)`, name, ids) == len(ids)
	})
	mu.Lock()
	defer mu.Unlock()
	used := map[int]bool{}
	for _, p := range seenBy {
		used[p] = true
	}
	if len(seenBy) != orders || len(used) != 2 {
		t.Errorf("%d orders handled over partitions %v; want %d over both", len(seenBy), used, orders)
	}
	for id, subj := range subjects {
		if subj == "" || subj[:4] != events.EventPrefix {
			t.Errorf("event %s delivered as %q, want its EVENTS subject", id, subj)
		}
	}
}
