package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestPartitionsChangeOnlyTheEventConsumers: one partition wires a role
// exactly as before (a runner per plan); more put the plans on EVENTS
// behind a lease keeper with a consumer per partition on PARTITIONS, and
// leave the command consumers as they were.
func TestPartitionsChangeOnlyTheEventConsumers(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	plans, err := inventoryPlan()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		partitions         int
		runners            []string // consumer names of the plain runners
		partitionConsumers int
	}{
		{1, []string{"inventory-commands", "inventory-events"}, 0},
		{4, []string{"inventory-commands"}, 4},
	} {
		d := &Deps{Cfg: config.Config{Partitions: tc.partitions, PartitionLeaseTTL: 15 * time.Second, BatchSize: 10, MaxDeliver: 5},
			Log: slog.New(slog.DiscardHandler), JS: js, Pool: testenv.Pool(t)}
		services, err := d.runners("inventory", plans)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		var keepers []*partitionedRole
		for _, s := range services {
			switch s := s.(type) {
			case *runner.Runner:
				names = append(names, s.Name())
				if s.Spec().Stream == broker.StreamPartitions {
					t.Errorf("%d partitions: plain runner %s on PARTITIONS", tc.partitions, s.Name())
				}
			case *partitionedRole:
				keepers = append(keepers, s)
			}
		}
		if len(names) != len(tc.runners) || names[0] != tc.runners[0] || names[len(names)-1] != tc.runners[len(tc.runners)-1] {
			t.Errorf("%d partitions: runners %v, want %v", tc.partitions, names, tc.runners)
		}
		if tc.partitionConsumers == 0 {
			if len(keepers) != 0 {
				t.Errorf("1 partition: a lease keeper is wired")
			}
			continue
		}
		if len(keepers) != 1 || len(keepers[0].consumers) != tc.partitionConsumers {
			t.Fatalf("%d partitions: keepers %v", tc.partitions, keepers)
		}
		if c := keepers[0].consumers[3]; c.Name != "inventory-events-p3" || c.Stream != broker.StreamPartitions || c.DeadLetters != "inventory-events" {
			t.Errorf("partition consumer %+v", c)
		}
		r, err := d.planRunner(plans[1], 2)
		if err != nil {
			t.Fatal(err)
		}
		spec := r.Spec()
		if spec.Name != "inventory-events-p2" || spec.Stream != broker.StreamPartitions || r.Name() != "inventory-events" ||
			spec.FilterSubjects[0] != broker.PartitionFilter(2, plans[1].router.FilterSubjects()[0]) {
			t.Errorf("partition 2 runner: name %s, spec %+v", r.Name(), spec)
		}
	}
}

// TestNewHolderWaitsForTheMessagesThePreviousOneLeftUnacknowledged: a
// partition consumer with a message fetched and not acknowledged (its
// holder stopped) makes the next holder wait one AckWait, so that the
// message is redelivered before newer ones; none, no wait.
func TestNewHolderWaitsForTheMessagesThePreviousOneLeftUnacknowledged(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := broker.DefaultTopology()
	topo.Partitions = 2
	if err := broker.EnsureStreams(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	spec := broker.ConsumerSpec{Name: "handover-p0", Stream: broker.StreamPartitions, MaxDeliver: 5, AckWait: 7 * time.Second,
		FilterSubjects: []string{broker.PartitionFilter(0, "evt.>"), broker.PartitionFilter(1, "evt.>")}}
	missing := spec
	missing.Name = "handover-missing"
	if got := handoverDelay(ctx, js, []broker.ConsumerSpec{spec, missing}); got != 0 {
		t.Fatalf("no consumer yet: wait %s, want 0", got)
	}
	cons, err := broker.EnsureConsumer(ctx, js, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "evt.orders.placed.o-1", nil); err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second)) // the previous holder's, never acknowledged
	if err != nil {
		t.Fatal(err)
	}
	if got := handoverDelay(ctx, js, []broker.ConsumerSpec{missing, spec}); got != spec.AckWait {
		t.Errorf("a message left unacknowledged: wait %s, want the AckWait %s", got, spec.AckWait)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if got := handoverDelay(ctx, js, []broker.ConsumerSpec{spec}); got != 0 {
		t.Errorf("everything acknowledged: wait %s, want 0", got)
	}
}
