package projections_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/projections"
)

// TestRebuildUnderLoadKeepsAnswering: while orders is rebuilt, readers
// query it continuously and new orders keep arriving (some between the
// catch-up and the switch); every query succeeds, and the switched-in
// version equals a recomputation from scratch.
func TestRebuildUnderLoadKeepsAnswering(t *testing.T) {
	e := newEnv(t)
	e.seeded()
	p := projections.Orders{}

	var queries, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				err := e.pool.QueryRow(context.Background(),
					`SELECT count(*) FROM public.orders WHERE status = ANY($1)`, []string{"pending", "confirmed", "cancelled"}).Scan(&n)
				queries.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	next := 100
	place := func() uint64 {
		next++
		return e.placed(uuidFor(next), "c-load", line("CB-1", 1, 1000))
	}
	for range 20 {
		place()
	}
	res, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{
		BatchSize: 4,
		Progress:  func(pos, head uint64) { place() }, // load while replaying
		BeforeSwitch: func(context.Context) error {
			place()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	last := place()
	e.waitFor(p, last)
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d queries failed during the rebuild; first: %v", failures.Load(), queries.Load(), firstErr.Load())
	}
	if queries.Load() < 10 {
		t.Fatalf("only %d queries ran: the test proves nothing", queries.Load())
	}
	live := e.snapshot(p)
	if n := len(live["orders"]); n != 5+next-100 {
		t.Errorf("%d orders after the switch, want %d", n, 5+next-100)
	}
	if _, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if again := e.snapshot(p); !slices.Equal(live["orders"], again["orders"]) {
		t.Errorf("the switched-in version differs from a recomputation")
	}
	t.Logf("rebuild %+v; %d queries during it", res, queries.Load())
}

// TestReplayedEventsApplyOnce: a second worker started from an old
// position (as after a crash between commit and the next fetch), or a
// rebuild's rewind, never applies an event twice: counters stay right.
func TestReplayedEventsApplyOnce(t *testing.T) {
	e := newEnv(t)
	p := projections.Inventory{}
	e.run(p)
	e.publish(events.RestockedV1, "SKU-1", events.Restocked{SKU: "SKU-1", Quantity: 10, OnHand: 10})
	var last uint64
	for i := 1; i <= 5; i++ {
		last = e.publish(events.StockReservedV1, uuidFor(i), events.StockReserved{OrderID: uuidFor(i), CustomerID: "c", Currency: "EUR", Total: 1,
			Lines: []events.StockLine{{SKU: "SKU-1", Quantity: 1}}})
	}
	e.waitFor(p, last)
	// A second instance starts while the first runs: it reads from its
	// own start and must skip everything the checkpoint covers.
	e.run(p)
	last = e.publish(events.StockReleasedV1, uuidFor(1), events.StockMovement{OrderID: uuidFor(1), Lines: []events.StockLine{{SKU: "SKU-1", Quantity: 1}}})
	e.waitFor(p, last)
	got := e.one(`SELECT on_hand, reserved FROM public.inventory WHERE sku = 'SKU-1'`)
	if got["on_hand"] != 10.0 || got["reserved"] != 4.0 {
		t.Errorf("inventory = %v, want on_hand 10, reserved 4", got)
	}
}
