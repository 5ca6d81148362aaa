package sagas_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/sagatest"
)

const wait = 15 * time.Second

func line(sku string, qty, price int64) events.OrderLine {
	return events.OrderLine{SKU: sku, Quantity: qty, UnitPrice: price}
}

// skuPrefixes holds a random prefix per running test, so that -count=N
// (the same names, one database) starts each run with fresh SKUs.
var skuPrefixes sync.Map // *testing.T → string

// sku names a SKU unique to the running test (a valid subject token): the
// same t and name always give the same SKU.
func sku(t *testing.T, name string) string {
	p, ok := skuPrefixes.Load(t)
	if !ok {
		var b [6]byte
		_, _ = rand.Read(b[:])
		p, ok = skuPrefixes.LoadOrStore(t, "T"+hex.EncodeToString(b[:]))
		if !ok {
			t.Cleanup(func() { skuPrefixes.Delete(t) })
		}
	}
	return p.(string) + "-" + name
}

func wantStock(t *testing.T, s *sagatest.System, sku string, onHand, reserved int64) {
	t.Helper()
	s.Eventually(wait, "stock of "+sku, func() bool {
		h, r := s.Stock(sku)
		return h == onHand && r == reserved
	})
}

// ledgerOf is the provider's record of an order's authorization.
func ledgerOf(s *sagatest.System, orderID string) (provider.Authorization, bool) {
	for _, a := range s.Provider.Ledger().Authorizations {
		if a.OrderID == orderID {
			return a, true
		}
	}
	return provider.Authorization{}, false
}

// TestSagaPaths runs the paths that need no special timing on one system,
// in parallel.
func TestSagaPaths(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	tests := []struct {
		name       string
		customer   string
		restock    int64 // units of the test's SKU before the order
		lines      func(t *testing.T) []events.OrderLine
		wantStatus string
		wantReason string
		wantEvents []string
		wantStock  [2]int64 // on_hand, reserved of the test's SKU afterwards
		wantLedger string   // provider status of the authorization, "" for none
	}{
		{
			name: "happy path confirms, captures and commits", customer: "c-happy", restock: 5,
			lines:      func(t *testing.T) []events.OrderLine { return []events.OrderLine{line(sku(t, "a"), 2, 1250)} },
			wantStatus: events.StatusConfirmed,
			wantEvents: []string{"orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed", "payments.captured", "inventory.committed"},
			wantStock:  [2]int64{3, 0}, wantLedger: provider.StatusCaptured,
		},
		{
			name: "out of stock rejects and cancels without reserving", customer: "c-oos", restock: 1,
			lines:      func(t *testing.T) []events.OrderLine { return []events.OrderLine{line(sku(t, "a"), 2, 1000)} },
			wantStatus: events.StatusCancelled, wantReason: events.CancelOutOfStock,
			wantEvents: []string{"orders.placed", "inventory.rejected", "orders.cancelled"},
			wantStock:  [2]int64{1, 0},
		},
		{
			name: "unknown sku rejects the whole order", customer: "c-unknown", restock: 5,
			lines: func(t *testing.T) []events.OrderLine {
				return []events.OrderLine{line(sku(t, "a"), 1, 1000), line(sku(t, "never-stocked"), 1, 1000)}
			},
			wantStatus: events.StatusCancelled, wantReason: events.CancelUnknownSKU,
			wantEvents: []string{"orders.placed", "inventory.rejected", "orders.cancelled"},
			wantStock:  [2]int64{5, 0},
		},
		{
			name: "declined payment cancels and releases stock", customer: "c-decl", restock: 3,
			lines:      func(t *testing.T) []events.OrderLine { return []events.OrderLine{line(sku(t, "a"), 1, 1051)} },
			wantStatus: events.StatusCancelled, wantReason: events.CancelPaymentDeclined,
			wantEvents: []string{"orders.placed", "inventory.reserved", "payments.declined", "orders.cancelled", "inventory.released"},
			wantStock:  [2]int64{3, 0}, wantLedger: provider.StatusDeclined,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := s.For(t)
			lines := tc.lines(t)
			s.Restock(lines[0].SKU, tc.restock)
			wantStock(t, s, lines[0].SKU, tc.restock, 0)
			id := s.PlaceOrder(tc.customer, lines...)
			s.WaitEvents(id, wait, tc.wantEvents...)
			s.WaitOrder(id, tc.wantStatus, wait)
			if _, reason := s.OrderStatus(id); reason != tc.wantReason {
				t.Errorf("cancel reason %q, want %q", reason, tc.wantReason)
			}
			wantStock(t, s, lines[0].SKU, tc.wantStock[0], tc.wantStock[1])
			a, ok := ledgerOf(s, id)
			if got := map[bool]string{true: a.Status}[ok]; got != tc.wantLedger {
				t.Errorf("provider ledger status %q, want %q", got, tc.wantLedger)
			}
			if log := s.SagaLog(id); len(log) < len(tc.wantEvents)-1 {
				t.Errorf("saga log %v has fewer steps than the path's events", log)
			}
		})
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestCustomerCancelAfterConfirmationRefundsAndReturns(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	a := sku(t, "a")
	s.Restock(a, 4)
	id := s.PlaceOrder("c-1", line(a, 3, 700))
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed", "payments.captured", "inventory.committed")
	wantStock(t, s, a, 1, 0)

	s.Cancel(id)
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed", "payments.captured",
		"inventory.committed", "orders.cancelled", "payments.refunded", "inventory.returned")
	if st, reason := s.OrderStatus(id); st != events.StatusCancelled || reason != events.CancelCustomer {
		t.Errorf("order %s/%s, want cancelled/customer", st, reason)
	}
	wantStock(t, s, a, 4, 0)
	if l, _ := ledgerOf(s, id); l.Status != provider.StatusRefunded || l.Refunded != 2100 {
		t.Errorf("ledger %+v, want refunded 2100", l)
	}
	// A second cancel changes nothing.
	s.Cancel(id)
	s.Eventually(wait, "second cancel logged as ignored", func() bool {
		return slices.Contains(s.SagaLog(id), "cancel_order:ignored")
	})
	if got := len(s.Events(id)); got != 9 {
		t.Errorf("%d events after a second cancel, want 9", got)
	}
}

// TestCustomerCancelBeforeConfirmationVoidsAndReleases cancels while the
// authorization is in flight (the provider answers slowly). Which of the
// payments participant's two messages (the reservation, the cancellation)
// it handles first is a race the test cannot steer, and both ends are
// consistent: either the authorization lands after the cancel and is
// voided (the late-authorization path), or payments saw the cancel first
// and authorizes nothing. Either way the reservation is released and the
// provider holds nothing. (lost_results_test.go drives each ordering
// deterministically.)
func TestCustomerCancelBeforeConfirmationVoidsAndReleases(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{
		Faults:         provider.Faults{Latency: provider.Duration(1500 * time.Millisecond)},
		PaymentTimeout: 5 * time.Second,
	})
	a := sku(t, "a")
	s.Restock(a, 2)
	id := s.PlaceOrder("c-1", line(a, 2, 500))
	s.Eventually(wait, "stock reserved", func() bool { return s.StockOrder(id) == "reserved" })
	s.Cancel(id)
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "orders.cancelled", "inventory.released")
	var lateAuthorization bool
	s.Eventually(wait, "payments settled the reservation", func() bool {
		log := s.SagaLog(id)
		evs := s.Events(id)
		lateAuthorization = slices.Contains(evs, "payments.voided") && slices.Contains(log, "confirm_order:ignored")
		return lateAuthorization || slices.Contains(log, "authorize_payment:ignored")
	})
	if st, reason := s.OrderStatus(id); st != events.StatusCancelled || reason != events.CancelCustomer {
		t.Errorf("order %s/%s, want cancelled/customer", st, reason)
	}
	wantStock(t, s, a, 2, 0)
	l, held := ledgerOf(s, id)
	switch {
	case lateAuthorization && (!held || l.Status != provider.StatusVoided):
		t.Errorf("late authorization: ledger %+v (held %v), want voided", l, held)
	case !lateAuthorization && held && l.Status != provider.StatusVoided:
		t.Errorf("cancel seen first, yet the provider holds %+v", l)
	}
	t.Logf("late authorization voided: %v", lateAuthorization)
}

// TestTimeoutCancelsAndCompensates: with no payments participant running,
// the order is not confirmed by its deadline; the sweeper cancels it and
// inventory releases the reservation.
func TestTimeoutCancelsAndCompensates(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"orders", "inventory"}, Deadline: 2 * time.Second})
	a := sku(t, "a")
	s.Restock(a, 2)
	id := s.PlaceOrder("c-1", line(a, 1, 500))
	s.Eventually(wait, "stock reserved", func() bool { return s.StockOrder(id) == "reserved" })
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "orders.cancelled", "inventory.released")
	if st, reason := s.OrderStatus(id); st != events.StatusCancelled || reason != events.CancelTimeout {
		t.Errorf("order %s/%s, want cancelled/timeout", st, reason)
	}
	wantStock(t, s, a, 2, 0)
	if !slices.Contains(s.SagaLog(id), "timeout:cancelled") {
		t.Errorf("saga log %v lacks the timeout step", s.SagaLog(id))
	}
}

// TestLateAuthorizationIsVoided: the provider answers after the deadline;
// the order times out meanwhile, so the authorization that arrives is
// voided and the order stays cancelled.
func TestLateAuthorizationIsVoided(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{
		Deadline:       2 * time.Second,
		Faults:         provider.Faults{Latency: provider.Duration(2500 * time.Millisecond)},
		PaymentTimeout: 5 * time.Second,
	})
	a := sku(t, "a")
	s.Restock(a, 1)
	id := s.PlaceOrder("c-1", line(a, 1, 900))
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "orders.cancelled", "inventory.released",
		"payments.authorized", "payments.voided")
	if st, reason := s.OrderStatus(id); st != events.StatusCancelled || reason != events.CancelTimeout {
		t.Errorf("order %s/%s, want cancelled/timeout", st, reason)
	}
	if l, _ := ledgerOf(s, id); l.Status != provider.StatusVoided {
		t.Errorf("ledger status %s, want voided", l.Status)
	}
	if p := s.Payment(id); p != "voided" {
		t.Errorf("payment status %s, want voided", p)
	}
	wantStock(t, s, a, 1, 0)
}

// TestLateReservationIsReleased: inventory is down until after the order
// timed out; when it comes back it reserves (orders.placed comes first on
// its stream) and then releases, and payments, which saw the cancel
// first, authorizes nothing.
func TestLateReservationIsReleased(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"orders", "payments"}, Deadline: 2 * time.Second})
	a := sku(t, "a")
	id := s.PlaceOrder("c-1", line(a, 1, 900))
	s.WaitOrder(id, events.StatusCancelled, wait)
	s.Eventually(wait, "payments saw the cancel", func() bool { return s.Payment(id) == "new" })

	// Stock exists before inventory comes back (seeded directly: its
	// command consumer would race its event consumer).
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO inventory.inventory (sku, on_hand) VALUES ($1, 3)`, a); err != nil {
		t.Fatal(err)
	}
	s.StartRole("inventory")
	s.WaitEvents(id, wait, "orders.placed", "orders.cancelled", "inventory.reserved", "inventory.released")
	wantStock(t, s, a, 3, 0)
	// Payments reacts to inventory.reserved on its own consumer, which may
	// run after inventory.released is already in the stream.
	s.Eventually(wait, "payments ignored the late reservation (saga log has authorize_payment:ignored)", func() bool {
		return slices.Contains(s.SagaLog(id), "authorize_payment:ignored")
	})
	if _, ok := ledgerOf(s, id); ok {
		t.Error("the provider authorized a cancelled order")
	}
}

// TestProviderOutageWaitsBehindOpenBreakerThenRecovers: during an outage
// the authorization is retried behind an open breaker without failing the
// saga or dead-lettering; after the outage the order is confirmed.
func TestProviderOutageWaitsBehindOpenBreakerThenRecovers(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{
		Deadline: 20 * time.Second,
		Faults:   provider.Faults{Outage: provider.OutageError},
	})
	a := sku(t, "a")
	s.Restock(a, 1)
	id := s.PlaceOrder("c-1", line(a, 1, 900))
	s.Eventually(wait, "breaker open", func() bool { return s.Logged("circuit breaker changed", "to=open") })
	time.Sleep(500 * time.Millisecond) // a few redeliveries behind the open breaker
	if st, _ := s.OrderStatus(id); st != events.StatusPending {
		t.Fatalf("order %s during the outage, want pending", st)
	}
	if s.DeadLetters() != 0 {
		t.Fatal("the outage dead-lettered a message")
	}
	if err := s.Provider.SetFaults(provider.Faults{Outage: provider.OutageOff}); err != nil {
		t.Fatal(err)
	}
	s.WaitOrder(id, events.StatusConfirmed, wait)
	s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed", "payments.captured", "inventory.committed")
	if !s.Logged("circuit breaker changed", "to=closed") {
		t.Error("breaker did not close after recovery")
	}
	if l, _ := ledgerOf(s, id); l.Status != provider.StatusCaptured {
		t.Errorf("ledger status %s, want captured", l.Status)
	}
}
