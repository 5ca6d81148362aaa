package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/consumers"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestListAndResetPosition(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	ctx := context.Background()
	cons, err := broker.EnsureConsumer(ctx, js, broker.ConsumerSpec{
		Name: "c-orders", Stream: broker.StreamCommands, FilterSubjects: []string{"cmd.orders.place"},
		MaxDeliver: 5, AckWait: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "cmd.orders.place", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Handle three: ack two, leave one unacked.
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		if i < 2 {
			_ = m.Ack()
		}
		i++
	}
	// An ephemeral consumer (someone's `nats sub`) is not reported.
	if _, err := js.CreateConsumer(ctx, broker.StreamEvents, jetstream.ConsumerConfig{}); err != nil {
		t.Fatal(err)
	}

	var got consumers.Info
	// The server counts acks and pending messages as they arrive, not
	// before it answers the publish or the ack: wait for both counts.
	want := consumers.Info{Stream: broker.StreamCommands, Name: "c-orders", Delivered: 3, AckFloor: 2, Pending: 2, AckPending: 1}
	testenv.Eventually(t, 5*time.Second, "acks and pending counted", func() bool {
		got, err = consumers.Find(ctx, js, "", "c-orders")
		return err == nil && got == want
	})
	if got != want {
		t.Errorf("info\n got %+v\nwant %+v", got, want)
	}
	all, err := consumers.List(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("List = %+v, want only the durable consumer", all)
	}

	after, err := consumers.Reset(ctx, js, broker.StreamCommands, "c-orders", 2)
	if err != nil {
		t.Fatal(err)
	}
	if after.Pending != 4 {
		t.Errorf("pending after reset to seq 2 = %d, want 4", after.Pending)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if meta, _ := m.Metadata(); meta.Sequence.Stream != 2 {
		t.Errorf("next delivery after reset is seq %d, want 2", meta.Sequence.Stream)
	}

	if _, err := consumers.Find(ctx, js, "", "nobody"); !errors.Is(err, consumers.ErrNotFound) {
		t.Errorf("Find(nobody) = %v, want ErrNotFound", err)
	}
	if _, err := consumers.Reset(ctx, js, broker.StreamCommands, "c-orders", 0); err == nil {
		t.Error("reset to 0 accepted")
	}
}
