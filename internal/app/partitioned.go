package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/lease"
	"github.com/tradewind/tradewind/internal/metrics"
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
// Hazards: on a hand-over (an instance stops, or sheds a partition to a
// newcomer) the messages the old holder had fetched but not acknowledged
// come back after their AckWait, possibly after newer ones of the same
// order: for that window the handlers' own guards (row locks, tombstones)
// hold correctness, as they do today for instances sharing one consumer.
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
		var wg sync.WaitGroup
		for _, p := range plans {
			// One runner per partition whatever p.workers says: a second
			// one would fetch the partition's next batch concurrently and
			// undo its order. Parallelism comes from the partitions.
			r, err := d.planRunner(p, partition)
			if err != nil {
				return err
			}
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

// partitionDurable is the durable consumer of plan's partition n.
func partitionDurable(plan string, n int) string { return fmt.Sprintf("%s-p%d", plan, n) }
