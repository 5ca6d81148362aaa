package sagas_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/sagatest"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestCancelBeforeItsOrderIsPlaced: the customer's cancel is handled
// before the order's place command (they travel on one stream but may be
// published, or redelivered, in either order). The cancel is remembered,
// never dead-lettered, and the order is cancelled (reason customer) the
// moment it is placed, its reservation and authorization compensated like
// any cancel before confirmation. A remembered cancel that has expired
// cancels nothing.
func TestCancelBeforeItsOrderIsPlaced(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	tests := []struct {
		name       string
		expire     bool // the cancel's tombstone outlived its TTL before the order came
		wantStatus string
		wantReason string
	}{
		{name: "an early cancel cancels the order when it is placed",
			wantStatus: events.StatusCancelled, wantReason: events.CancelCustomer},
		{name: "an expired early cancel does not", expire: true,
			wantStatus: events.StatusConfirmed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := s.For(t)
			a := sku(t, "a")
			s.Restock(a, 2)
			id := uuid.NewString()
			cmd := s.Publish(events.CancelOrderV1, events.CancelOrder{OrderID: id})
			s.Eventually(wait, "the early cancel handled", func() bool {
				var n int
				s.Query(&n, `SELECT count(*) FROM core.inbox WHERE consumer = 'orders-commands' AND event_id = $1`, cmd.ID())
				return n == 1 || s.DeadLetters() > 0
			})
			if n := s.DeadLetters(); n != 0 {
				t.Fatalf("the early cancel was dead-lettered (%d dead letters)", n)
			}
			if tc.expire {
				if _, err := s.Pool.Exec(context.Background(),
					`UPDATE orders.cancel_tombstones SET expires_at = now() - interval '1 second' WHERE order_id = $1`, id); err != nil {
					t.Fatal(err)
				}
			}
			s.Publish(events.PlaceOrderV1, events.PlaceOrder{OrderID: id, CustomerID: "c-early", Currency: "EUR",
				Lines: []events.OrderLine{line(a, 1, 800)}})
			s.WaitOrder(id, tc.wantStatus, wait)
			if _, reason := s.OrderStatus(id); reason != tc.wantReason {
				t.Errorf("cancel reason %q, want %q", reason, tc.wantReason)
			}
			if tc.wantStatus == events.StatusCancelled {
				// At rest: the reservation (if any) released, nothing held.
				wantStock(t, s, a, 2, 0)
				s.Eventually(wait, "payments at rest", func() bool { return slices.Contains([]string{"new", "voided"}, s.Payment(id)) })
				got := s.Events(id)
				for _, want := range []string{"orders.placed", "orders.cancelled"} {
					if !slices.Contains(got, want) {
						t.Errorf("events %v lack %s", got, want)
					}
				}
				if slices.Contains(got, "orders.confirmed") {
					t.Errorf("events %v: a cancelled order was confirmed", got)
				}
			}
			var left int
			s.Query(&left, `SELECT count(*) FROM orders.cancel_tombstones WHERE order_id = $1`, id)
			if left != 0 {
				t.Errorf("%d tombstones left for the placed order", left)
			}
		})
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// TestExpiredCancelTombstonesArePurged: the orders role's sweeper deletes
// tombstones past their expiry and keeps the others, so cancels for orders
// that never come do not accumulate.
func TestExpiredCancelTombstonesArePurged(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"orders"}})
	expired, live := uuid.NewString(), uuid.NewString()
	if _, err := s.Pool.Exec(context.Background(), `
		INSERT INTO orders.cancel_tombstones (order_id, command_id, requested_at, expires_at) VALUES
			($1, 'cmd-expired', now() - interval '9 days', now() - interval '1 day'),
			($2, 'cmd-live', now(), now() + interval '8 days')`, expired, live); err != nil {
		t.Fatal(err)
	}
	count := func(id string) int {
		var n int
		s.Query(&n, `SELECT count(*) FROM orders.cancel_tombstones WHERE order_id = $1`, id)
		return n
	}
	s.Eventually(wait, "expired tombstone purged", func() bool { return count(expired) == 0 })
	if count(live) != 1 {
		t.Error("a live tombstone was purged")
	}
}

// TestCancelAndPlaceOfOneOrderAreSerial runs cancel_order and place_order
// for one order id in two concurrent transactions, in both orders: the
// second waits for the first to commit, so the cancel either finds the
// order or leaves a tombstone the placement finds — never a tombstone
// nobody reads beside an order that stays pending.
func TestCancelAndPlaceOfOneOrderAreSerial(t *testing.T) {
	pool := testenv.Pool(t)
	place, err := orders.NewPlaceOrder(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cancelH := orders.NewCancelOrder()
	tests := []struct {
		name       string
		cancelLast bool
		wantPlace  []string // types emitted by place_order
		wantCancel []string // types emitted by cancel_order
	}{
		{"cancel while the placement is uncommitted waits and cancels the order", true,
			[]string{events.OrderPlacedV1}, []string{events.OrderCancelledV1}},
		{"placement while the tombstone is uncommitted waits and cancels at once", false,
			[]string{events.OrderPlacedV1, events.OrderCancelledV1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			id := uuid.NewString()
			placeCmd, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{OrderID: id, CustomerID: "c-serial",
				Currency: "EUR", Lines: []events.OrderLine{line("serial", 1, 500)}}, events.WithSource("/test"))
			if err != nil {
				t.Fatal(err)
			}
			cancelCmd, err := events.New(events.CancelOrderV1, "", events.CancelOrder{OrderID: id}, events.WithSource("/test"))
			if err != nil {
				t.Fatal(err)
			}
			first, second := runner.Handler(place), runner.Handler(cancelH)
			firstCmd, secondCmd := placeCmd, cancelCmd
			if !tc.cancelLast {
				first, second, firstCmd, secondCmd = second, first, secondCmd, firstCmd
			}
			tx1, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx1.Rollback(ctx) }()
			out1, err := first.Handle(ctx, tx1, firstCmd)
			if err != nil {
				t.Fatal(err)
			}

			type result struct {
				out []*event.Event
				err error
			}
			pid, done := make(chan uint32, 1), make(chan result, 1)
			go func() {
				tx2, err := pool.Begin(ctx)
				if err != nil {
					done <- result{err: err}
					return
				}
				defer func() { _ = tx2.Rollback(ctx) }()
				var p uint32
				if err := tx2.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&p); err != nil {
					done <- result{err: err}
					return
				}
				pid <- p
				out, err := second.Handle(ctx, tx2, secondCmd)
				if err == nil {
					err = tx2.Commit(ctx)
				}
				done <- result{out: out, err: err}
			}()
			p := <-pid
			testenv.Eventually(t, wait, "the second transaction waits for the first", func() bool {
				var waiting bool
				if err := pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, p).
					Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				return waiting
			})
			if err := tx1.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			outPlace, outCancel := out1, r.out
			if !tc.cancelLast {
				outPlace, outCancel = r.out, out1
			}
			if got := typesOf(outPlace); !slices.Equal(got, tc.wantPlace) {
				t.Errorf("place_order emitted %v, want %v", got, tc.wantPlace)
			}
			if got := typesOf(outCancel); !slices.Equal(got, tc.wantCancel) {
				t.Errorf("cancel_order emitted %v, want %v", got, tc.wantCancel)
			}
			var status string
			if err := pool.QueryRow(ctx, `SELECT status FROM orders.orders WHERE order_id = $1`, id).Scan(&status); err != nil {
				t.Fatal(err)
			}
			var tombstones int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders.cancel_tombstones WHERE order_id = $1`, id).Scan(&tombstones); err != nil {
				t.Fatal(err)
			}
			if status != events.StatusCancelled || tombstones != 0 {
				t.Errorf("order %s with %d tombstones, want cancelled with none", status, tombstones)
			}
		})
	}
}

func typesOf(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type()
	}
	return out
}
