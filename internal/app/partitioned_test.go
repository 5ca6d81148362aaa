package app

import (
	"log/slog"
	"testing"
	"time"

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
