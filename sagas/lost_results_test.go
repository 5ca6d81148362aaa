package sagas_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/sagatest"
)

// These tests reproduce what the long chaos run found: a provider call
// that succeeded but whose result Tradewind never committed (the process
// was killed, the client timed out, or the runner rolled the batch back
// and re-ran it), followed by messages in an order the running saga only
// produces by chance. Only the payments participant runs; the test plays
// the other participants by publishing their events, and plays the lost
// attempt by making the participant's exact call itself.

// paymentOps lists the order's payments.payment_ops as "op", sorted.
func paymentOps(t *testing.T, s *sagatest.System, orderID string) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT op FROM payments.payment_ops WHERE order_id = $1 ORDER BY op`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var op string
		if err := rows.Scan(&op); err != nil {
			t.Fatal(err)
		}
		out = append(out, op)
	}
	return out
}

// cancelled is orders.cancelled of an order as the orders participant
// emits it.
func cancelled(id, customer string, total int64, reason, previous string) events.OrderCancelled {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	return events.OrderCancelled{OrderID: id, CustomerID: customer, Currency: "EUR", Total: total,
		Reason: reason, PreviousStatus: previous, CancelledAt: now, PlacedAt: now}
}

// reserved is inventory.reserved of an order.
func reserved(id, customer string, total int64) events.StockReserved {
	return events.StockReserved{OrderID: id, CustomerID: customer, Currency: "EUR", Total: total,
		Lines: []events.StockLine{{SKU: "lost-results", Quantity: 1}}}
}

// waitHandled waits until the payments participant has applied ev (its
// inbox row) or dead-lettered something.
func waitHandled(t *testing.T, s *sagatest.System, ev *event.Event) {
	t.Helper()
	s.Eventually(wait, "payments handled "+ev.Type()+" of "+ev.Subject(), func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM core.inbox WHERE consumer = 'payments-events' AND event_id = $1`, ev.ID())
		return n == 1 || s.DeadLetters() > 0
	})
}

// TestAuthorizationWhoseResultWasLostIsVoidedWhenTheOrderIsCancelled is
// the dangling-authorization bug: the authorize call reached the provider
// but its result was never committed; the order was cancelled (the void
// step found nothing recorded); then the reservation was handled again and
// found the order cancelled. Every authorization the provider holds for a
// cancelled order must end voided, and none may be created for an order
// that never reached the provider.
func TestAuthorizationWhoseResultWasLostIsVoidedWhenTheOrderIsCancelled(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"payments"}})
	client := s.PaymentClient()
	tests := []struct {
		name        string
		total       int64
		lostAttempt bool   // an authorize call reached the provider, its result was lost
		wantLedger  string // the provider's status afterwards, "" for no authorization
		wantPayment string
		wantOps     []string
		wantEvents  []string
	}{
		{
			name: "a lost authorization is found and voided", total: 900, lostAttempt: true,
			wantLedger: provider.StatusVoided, wantPayment: "voided", wantOps: []string{"authorize", "void"},
			wantEvents: []string{"inventory.reserved", "orders.cancelled", "payments.authorized", "payments.voided"},
		},
		{
			name: "a lost decline leaves nothing to void", total: 951, lostAttempt: true,
			wantLedger: provider.StatusDeclined, wantPayment: "declined",
			wantEvents: []string{"inventory.reserved", "orders.cancelled"},
		},
		{
			name: "an order that never reached the provider gets no authorization", total: 900,
			wantPayment: "new",
			wantEvents:  []string{"inventory.reserved", "orders.cancelled"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := s.For(t)
			id, customer := uuid.NewString(), "c-lost"
			if tc.lostAttempt {
				// Exactly the call authorize_payment makes.
				if _, err := client.Authorize(context.Background(), id, provider.AuthorizeRequest{
					OrderID: id, CustomerID: customer, Amount: tc.total, Currency: "EUR"}); err != nil {
					t.Fatal(err)
				}
			}
			waitHandled(t, s, s.PublishEvent(events.OrderCancelledV1, id,
				cancelled(id, customer, tc.total, events.CancelTimeout, events.StatusPending)))
			waitHandled(t, s, s.PublishEvent(events.StockReservedV1, id, reserved(id, customer, tc.total)))
			s.WaitEvents(id, wait, tc.wantEvents...)

			a, ok := ledgerOf(s, id)
			if got := map[bool]string{true: a.Status}[ok]; got != tc.wantLedger {
				t.Errorf("provider ledger status %q, want %q", got, tc.wantLedger)
			}
			if got := s.Payment(id); got != tc.wantPayment {
				t.Errorf("payment status %q, want %q", got, tc.wantPayment)
			}
			if got := paymentOps(t, s, id); !slices.Equal(got, tc.wantOps) {
				t.Errorf("payment ops %v, want %v", got, tc.wantOps)
			}
		})
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// TestFraudCheckHonoursAnAuthorizationTheProviderAlreadyGave is the hazard
// the fraud check documented: the first attempt passed the fraud check
// (flag off) and reached the provider, its result was lost; the flag was
// turned on before the redelivery. The retry must not decline an order the
// provider holds an authorization for.
func TestFraudCheckHonoursAnAuthorizationTheProviderAlreadyGave(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"payments"}})
	ctx := context.Background()
	id, customer, total := uuid.NewString(), "c-"+payments.DefaultFraudRule.Marker+"-1", int64(990)
	if _, err := s.PaymentClient().Authorize(ctx, id, provider.AuthorizeRequest{
		OrderID: id, CustomerID: customer, Amount: total, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Flags.Admin().Update(ctx, payments.FlagFraudCheck, func(f *flags.Flag) { f.Percent = 100 }); err != nil {
		t.Fatal(err)
	}
	if err := s.Flags.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitHandled(t, s, s.PublishEvent(events.StockReservedV1, id, reserved(id, customer, total)))
	s.WaitEvents(id, wait, "inventory.reserved", "payments.authorized")
	if got := s.Payment(id); got != "authorized" {
		t.Errorf("payment status %q, want authorized (the provider's first answer)", got)
	}
	if a, _ := ledgerOf(s, id); a.Status != provider.StatusAuthorized {
		t.Errorf("provider ledger status %q, want authorized", a.Status)
	}

	// A suspect order that never reached the provider is still declined.
	other := uuid.NewString()
	s.PublishEvent(events.StockReservedV1, other, reserved(other, customer, total))
	s.WaitEvents(other, wait, "inventory.reserved", "payments.declined")
	if _, ok := ledgerOf(s, other); ok {
		t.Error("the provider saw a fraud-suspect order")
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// TestCancelAfterConfirmationIsRefundedWhenItOvertakesTheCapture is the
// captured-but-never-refunded bug: a confirmed order is cancelled by the
// customer, and payments handles orders.cancelled before orders.confirmed
// (several workers, or a capture whose result was lost and is redelivered).
// The capture may already have happened at the provider, so voiding is
// wrong; the refund must follow the capture.
func TestCancelAfterConfirmationIsRefundedWhenItOvertakesTheCapture(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"payments"}})
	client := s.PaymentClient()
	tests := []struct {
		name        string
		lostCapture bool // the capture call reached the provider, its result was lost
	}{
		{name: "capture result lost before the cancel", lostCapture: true},
		{name: "cancel handled before the capture"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := s.For(t)
			id, customer, total := uuid.NewString(), fmt.Sprintf("c-race-%d", i), int64(700)
			s.PublishEvent(events.StockReservedV1, id, reserved(id, customer, total))
			s.Eventually(wait, "authorized", func() bool { return s.Payment(id) == "authorized" })
			var authID string
			s.Query(&authID, `SELECT authorization_id FROM payments.payments WHERE order_id = $1`, id)
			if tc.lostCapture {
				// Exactly the call capture_payment makes.
				if _, err := client.Capture(context.Background(), "capture:"+id, authID, total); err != nil {
					t.Fatal(err)
				}
			}
			waitHandled(t, s, s.PublishEvent(events.OrderCancelledV1, id,
				cancelled(id, customer, total, events.CancelCustomer, events.StatusConfirmed)))
			now := time.Now().UTC().Format(time.RFC3339Nano)
			waitHandled(t, s, s.PublishEvent(events.OrderConfirmedV1, id, events.OrderConfirmed{OrderID: id, CustomerID: customer,
				Currency: "EUR", Total: total, AuthorizationID: authID, ConfirmedAt: now, PlacedAt: now}))
			s.WaitEvents(id, wait, "inventory.reserved", "payments.authorized", "orders.cancelled", "orders.confirmed",
				"payments.captured", "payments.refunded")
			if a, _ := ledgerOf(s, id); a.Status != provider.StatusRefunded || a.Refunded != total {
				t.Errorf("provider ledger %s, refunded %d; want refunded %d", a.Status, a.Refunded, total)
			}
			if got := s.Payment(id); got != "refunded" {
				t.Errorf("payment status %q, want refunded", got)
			}
			if got, want := paymentOps(t, s, id), []string{"authorize", "capture", "refund"}; !slices.Equal(got, want) {
				t.Errorf("payment ops %v, want %v", got, want)
			}
		})
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
