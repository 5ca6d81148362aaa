// Package scaleout_test runs the order saga on three `tradewind serve`
// processes that each run every saga role, with the saga's events split
// into partitions (TRADEWIND_PARTITIONS) that the processes share through
// leases: the scale-out deployment of docs/architecture.md.
package scaleout_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/acceptance"
	"github.com/tradewind/tradewind/internal/acceptance/serveproc"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// partitions: one per process and saga role.
//
// Instances of inventory lock a batch's SKUs up front in SKU order
// (runner.BatchLocker, inventory.LockStock), so they no longer deadlock
// each other as they did; the orders' deadline stays long so that a slow
// machine only slows the run down.
const partitions = 3

// sagaGroups are the roles whose events are partitioned (lease groups).
var sagaGroups = []string{"inventory", "orders", "payments"}

type process = serveproc.Process

// TestThreeProcessesOfEveryRoleShareTheOrders: with 3 partitions and three
// processes of every role, each process holds 1 partition of each saga
// role, every order reaches the outcome of its path, the invariant
// checker finds nothing, and every process handled events of every saga
// role (its share); when one process stops, the two others take over its
// partitions and the next orders end as well.
func TestThreeProcessesOfEveryRoleShareTheOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	started := time.Now()
	bin := testenv.BuildTradewind(t)
	nats := testenv.NATS(t)
	_, js := testenv.Connect(t, nats.URL)
	payURL := serveproc.StartProvider(t)
	dbURL := testenv.FreshDatabaseURL(t)

	procs := []*process{{Name: "A"}, {Name: "B"}, {Name: "C"}}
	for _, p := range procs {
		p.DataDir = t.TempDir()
		serveproc.Start(t, bin, p, []string{
			"DATABASE_URL=" + dbURL,
			"NATS_URL=" + nats.URL,
			"TRADEWIND_PAYMENT_URL=" + payURL,
			"TRADEWIND_ROLES=orders,inventory,payments,notifier,projections,relay",
			"TRADEWIND_PARTITIONS=" + strconv.Itoa(partitions),
			"TRADEWIND_PARTITION_LEASE_TTL=3s",
			"TRADEWIND_ORDER_DEADLINE=150s", // no order times out, however slow the machine
			"TRADEWIND_DEADLINE_SWEEP=200ms",
		})
	}
	for _, p := range procs {
		serveproc.WaitReady(t, p)
	}
	// The leases settle on the fair share: ceil(3/3) = 1 partition of
	// each saga role per process, so every partition has one holder.
	testenv.Eventually(t, time.Minute, "each process holds 1 partition of each saga role", func() bool {
		for _, p := range procs {
			m, err := serveproc.Scrape(p)
			if err != nil {
				return false
			}
			for _, g := range sagaGroups {
				if m[`tradewind_partition_held{group="`+g+`"}`] != float64(partitions/len(procs)) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("three processes ready and partitions spread after %s", time.Since(started).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := acceptance.NewWorkload("scaleout", js, testenv.PoolOn(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	const orders = 150
	placing := time.Now()
	if err := w.PlaceMix(ctx, orders, 8); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitTerminal(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders %v terminal %s after the first was placed", orders, w.Placed(), time.Since(placing).Round(time.Millisecond))
	mis, err := w.Mismatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome:", m)
	}
	pool := testenv.PoolOn(t, dbURL)
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	rep, err := acceptance.Check(ctx, pool, js, payURL)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Orders < orders || rep.StreamEvents == 0 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check:\n%s", b.String())
	}

	// One durable consumer per saga role's event consumer and partition.
	st, err := js.Stream(ctx, broker.StreamPartitions)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range st.ListConsumers(ctx).Info() {
		names = append(names, n.Name)
	}
	for _, c := range []string{"inventory-events", "orders-events", "payments-events"} {
		for i := range partitions {
			if want := fmt.Sprintf("%s-p%d", c, i); !slices.Contains(names, want) {
				t.Errorf("no consumer %s on %s (has %v)", want, broker.StreamPartitions, names)
			}
		}
	}

	// Each process handled a share of every saga role's events: it runs
	// their consumers only for the partitions it holds.
	for _, p := range procs {
		m, err := serveproc.Scrape(p)
		if err != nil {
			t.Fatal(err)
		}
		var shares []string
		for _, c := range []string{"inventory-events", "orders-events", "payments-events"} {
			applied := m[`tradewind_consumer_messages_total{consumer="`+c+`",result="applied"}`]
			if applied == 0 {
				t.Errorf("process %s applied no message of %s: it did not take its share", p.Name, c)
			}
			shares = append(shares, fmt.Sprintf("%s=%v", c, applied))
		}
		t.Logf("process %s applied %s; leases lost %v", p.Name, strings.Join(shares, " "), serveproc.Sum(m, `tradewind_partition_lease_changes_total{change="lost"`))
	}
	// Every process reports the lag of every partition consumer of its
	// roles, whichever process runs it (polled every 5 s).
	lag := fmt.Sprintf(`tradewind_consumer_pending{consumer="orders-events-p%d",stream="PARTITIONS"}`, partitions-1)
	testenv.Eventually(t, 30*time.Second, "every process reports "+lag, func() bool {
		for _, p := range procs {
			m, err := serveproc.Scrape(p)
			if err != nil {
				return false
			}
			if _, ok := m[lag]; !ok {
				return false
			}
		}
		return true
	})
	t.Logf("checked %d orders, %d stream events: %d violations after %s",
		rep.Orders, rep.StreamEvents, len(rep.Violations), time.Since(started).Round(time.Millisecond))

	// Fail-over: C stops (releasing its leases on its way down); A and B
	// take its partitions, at most ceil(3/2) = 2 each, and the saga goes on.
	procs[2].Stop()
	testenv.Eventually(t, time.Minute, "A and B hold every partition of each saga role", func() bool {
		held := map[string]float64{}
		for _, p := range procs[:2] {
			m, err := serveproc.Scrape(p)
			if err != nil {
				return false
			}
			for _, g := range sagaGroups {
				held[g] += m[`tradewind_partition_held{group="`+g+`"}`]
			}
		}
		for _, g := range sagaGroups {
			if held[g] != partitions {
				return false
			}
		}
		return true
	})
	w2, err := acceptance.NewWorkload("scaleout2", js, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w2.PlaceMix(ctx, orders/3, 8); err != nil {
		t.Fatal(err)
	}
	if err := w2.WaitTerminal(ctx); err != nil {
		t.Fatal(err)
	}
	if mis, err = w2.Mismatches(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome after the fail-over:", m)
	}
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	if rep, err = acceptance.Check(ctx, pool, js, payURL); err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Orders < orders+orders/3 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check after the fail-over:\n%s", b.String())
	}
	t.Logf("after C stopped: checked %d orders: %d violations; whole test %s",
		rep.Orders, len(rep.Violations), time.Since(started).Round(time.Millisecond))
}
