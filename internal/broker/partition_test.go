package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestPartitionsStreamSplitsEventsByAggregate: with Partitions > 1 every
// event is copied to PARTITIONS under prt.<n>.<its subject>, all events of
// one aggregate under one n, in EVENTS order, and several n are used.
func TestPartitionsStreamSplitsEventsByAggregate(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := broker.DefaultTopology()
	topo.Partitions = 4
	if err := broker.EnsureStreams(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	const aggregates, perAggregate = 20, 3
	for i := range perAggregate {
		for a := range aggregates {
			if _, err := js.Publish(ctx, fmt.Sprintf("evt.orders.step%d.order-%d", i, a), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := js.Stream(ctx, broker.StreamPartitions)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "every event copied to PARTITIONS", func() bool {
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == aggregates*perAggregate
	})
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	partitionOf := map[string]string{} // aggregate -> partition token
	steps := map[string]int{}          // aggregate -> events seen
	used := map[string]bool{}
	for range aggregates * perAggregate {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		tokens := strings.Split(m.Subject(), ".")
		if len(tokens) != 6 || tokens[0] != "prt" || tokens[2] != "evt" {
			t.Fatalf("subject %s: want prt.<n>.evt.<context>.<event>.<id>", m.Subject())
		}
		orig := broker.OriginalSubject(m.Subject())
		if orig != strings.Join(tokens[2:], ".") {
			t.Errorf("OriginalSubject(%s) = %s", m.Subject(), orig)
		}
		agg, p := tokens[5], tokens[1]
		if prev, ok := partitionOf[agg]; ok && prev != p {
			t.Errorf("aggregate %s in partitions %s and %s", agg, prev, p)
		}
		partitionOf[agg], used[p] = p, true
		if want := fmt.Sprintf("step%d", steps[agg]); tokens[4] != want {
			t.Errorf("aggregate %s: got %s, want %s next (EVENTS order)", agg, tokens[4], want)
		}
		steps[agg]++
		if m.Subject() != broker.PartitionFilter(mustAtoi(t, p), orig) {
			t.Errorf("PartitionFilter disagrees with %s", m.Subject())
		}
	}
	if len(used) < 2 {
		t.Errorf("%d aggregates all landed in partitions %v", aggregates, used)
	}
}

// TestOneTopologyHasNoPartitionsStream: the default (1 partition) is the
// layout without partitions.
func TestOneTopologyHasNoPartitionsStream(t *testing.T) {
	for _, s := range broker.DefaultTopology().Streams() {
		if s.Name == broker.StreamPartitions {
			t.Fatal("the default topology has a PARTITIONS stream")
		}
	}
	if got := broker.OriginalSubject("evt.orders.placed.x"); got != "evt.orders.placed.x" {
		t.Errorf("OriginalSubject changed an EVENTS subject: %s", got)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}
