package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/inventory"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestBatchesTouchingSharedSKUsInOppositeOrdersDoNotDeadlock: a batch of
// restocks of B then A (inventory-commands, one message after another)
// and a reservation of A and B (inventory-events) run concurrently, queued
// so that the reservation gets A first. Restocking in arrival order would
// hold B while waiting for A, and the reservation then wait for B: a
// deadlock PostgreSQL breaks by failing one of them. With inventory's
// LockStock taken first, as the runner does, the restocks wait for A
// holding nothing, and both commit.
func TestBatchesTouchingSharedSKUsInOppositeOrdersDoNotDeadlock(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	p := "DL-" + uuid.NewString()[:8] + "-"
	a, b := p+"A", p+"B"
	if _, err := pool.Exec(ctx, `INSERT INTO inventory.inventory (sku, on_hand) VALUES ($1, 100), ($2, 100)`, a, b); err != nil {
		t.Fatal(err)
	}
	restocks, err := handlers.NewRouter(inventory.Restock{})
	if err != nil {
		t.Fatal(err)
	}
	reservations, err := handlers.NewRouter(inventory.ReserveStock{})
	if err != nil {
		t.Fatal(err)
	}
	restocks.LockWith(inventory.LockStock)
	reservations.LockWith(inventory.LockStock)
	restock := func(sku string) *event.Event {
		ev, err := events.New(events.RestockV1, sku, events.Restock{SKU: sku, Quantity: 5})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	order := uuid.NewString()
	placed, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{OrderID: order, CustomerID: "c-dl", Currency: "EUR", Total: 20,
		Lines:    []events.OrderLine{{SKU: a, Quantity: 1, UnitPrice: 10}, {SKU: b, Quantity: 1, UnitPrice: 10}},
		PlacedAt: "2026-12-07T10:00:00Z", Deadline: "2026-12-07T10:00:30Z"})
	if err != nil {
		t.Fatal(err)
	}

	// A third transaction holds A, so that the batches queue for it in a
	// known order: the reservation first, then the restocks.
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM inventory.inventory WHERE sku = $1 FOR UPDATE`, a); err != nil {
		t.Fatal(err)
	}
	reserveDone := applyConcurrently(t, pool, reservations, placed)
	restockDone := applyConcurrently(t, pool, restocks, restock(b), restock(a))
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-reserveDone; err != nil {
		t.Errorf("reservation: %v", err)
	}
	if err := <-restockDone; err != nil {
		t.Errorf("restocks: %v", err)
	}
	var onHand, reserved int64
	if err := pool.QueryRow(ctx, `SELECT sum(on_hand), sum(reserved) FROM inventory.inventory WHERE sku = ANY($1)`, []string{a, b}).Scan(&onHand, &reserved); err != nil {
		t.Fatal(err)
	}
	if onHand != 210 || reserved != 2 {
		t.Errorf("on hand %d, reserved %d; want 210 and 2", onHand, reserved)
	}
}

// applyConcurrently applies evs with r as the runner's fast path does
// (LockBatch, then the handlers, in one transaction) in a goroutine, and
// returns once that transaction waits for a lock; the channel yields the
// commit's outcome.
func applyConcurrently(t *testing.T, pool *pgxpool.Pool, r *handlers.Router, evs ...*event.Event) <-chan error {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			defer func() { _ = tx.Rollback(ctx) }()
			if err := r.LockBatch(ctx, tx, evs); err != nil {
				return err
			}
			msgs := make([]runner.Msg, len(evs))
			for i, ev := range evs {
				msgs[i] = runner.Msg{Ctx: ctx, Event: ev}
			}
			if _, err := r.HandleBatch(ctx, tx, msgs); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}()
	}()
	testenv.Eventually(t, 10*time.Second, "the batch waiting for a lock", func() bool {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting
	})
	return done
}
