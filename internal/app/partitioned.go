package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/lease"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/runner"
)

// Partitioned saga consumers (TRADEWIND_PARTITIONS > 1).
//
// EVENTS is copied into broker.StreamPartitions, split by aggregate (order)
// id. Each saga role's event consumers become one durable consumer per
// partition (orders-events-p0 …), and the instances of the role share the
// partitions through leases (internal/lease): an instance runs the
// consumers of the partitions it holds, one runner each, so the events of
// one order are handled by one process, one batch after another, in
// stream order. The consumers keep the plan's name for the inbox, so
// switching partitioning on re-applies nothing (the first partitioned
// consumers read PARTITIONS from its start, and the inbox skips what the
// shared consumer applied).
//
// Hand-over: the messages the previous holder had fetched but not
// acknowledged (it stopped, or crashed) come back after their AckWait, and
// JetStream then delivers them before newer ones. So a new holder that
// finds a partition consumer with unacknowledged messages waits one
// AckWait before it pulls (handoverDelay): the order's older events come
// first. Hazard: a message nak'ed with a delay longer than AckWait (a
// retry backoff) can still come after newer ones of its order; the
// handlers' own guards (row locks, tombstones) hold correctness then, as
// they do for instances sharing one consumer.
// Changing the partition count re-maps orders to partitions: run it with
// no order in flight. Commands are not partitioned (their subjects carry
// no order id): instances share cmd consumers as before.

// partitionedRole is the lease keeper of a role's partitioned plans, and
// every partition consumer it may run: the metrics poller reports each
// one's lag from every instance, whichever holds it.
type partitionedRole struct {
	*lease.Keeper
	consumers []metrics.ConsumerRef
}

// partitionKeeper is the lease keeper of a role's partitioned plans.
func (d *Deps) partitionKeeper(role string, plans []consumerPlan) (*partitionedRole, error) {
	work := func(ctx context.Context, partition int) error {
		// One runner per partition whatever p.workers says: a second one
		// would fetch the partition's next batch concurrently and undo its
		// order. Parallelism comes from the partitions.
		var runners []*runner.Runner
		var specs []broker.ConsumerSpec
		for _, p := range plans {
			r, err := d.planRunner(p, partition)
			if err != nil {
				return err
			}
			runners, specs = append(runners, r), append(specs, r.Spec())
		}
		if wait := handoverDelay(ctx, d.JS, specs); wait > 0 {
			d.Log.Info("partition taken over with unacknowledged messages: waiting for their redelivery first",
				"group", role, "partition", partition, "wait", wait)
			if !retry.Sleep(ctx, wait) {
				return nil
			}
		}
		var wg sync.WaitGroup
		for _, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = r.Run(ctx)
			}()
		}
		wg.Wait()
		return nil
	}
	k, err := lease.New(d.JS, lease.Config{
		Group: role, Partitions: d.Cfg.Partitions, TTL: d.Cfg.PartitionLeaseTTL, Replicas: d.Cfg.Replicas,
		Log: d.Log, Observe: metrics.SetPartitionsHeld, Changed: metrics.PartitionLeaseChanged,
	}, work)
	if err != nil {
		return nil, err
	}
	pr := &partitionedRole{Keeper: k}
	for _, p := range plans {
		for n := range d.Cfg.Partitions {
			pr.consumers = append(pr.consumers, metrics.ConsumerRef{Stream: broker.StreamPartitions,
				Name: partitionDurable(p.name, n), DeadLetters: p.name})
		}
	}
	return pr, nil
}

// handoverDelay is how long a new holder of a partition waits before it
// pulls: the longest AckWait of its consumers that have unacknowledged
// messages (left by the previous holder), else 0. A consumer that does
// not exist yet, or cannot be read, has nothing to wait for.
func handoverDelay(ctx context.Context, js jetstream.JetStream, specs []broker.ConsumerSpec) time.Duration {
	var wait time.Duration
	for _, s := range specs {
		c, err := js.Consumer(ctx, s.Stream, s.Name)
		if err != nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumAckPending == 0 {
			continue
		}
		wait = max(wait, info.Config.AckWait)
	}
	return wait
}

// partitionDurable is the durable consumer of plan's partition n.
func partitionDurable(plan string, n int) string { return fmt.Sprintf("%s-p%d", plan, n) }
