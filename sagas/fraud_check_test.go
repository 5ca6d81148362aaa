package sagas_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/sagatest"
)

// markedCustomer finds a customer id the fraud rule suspects (it contains
// the rule's marker) that is inside (or outside) the fraud-check rollout
// at percent.
func markedCustomer(t *testing.T, percent float64, inside bool) string {
	t.Helper()
	f := flags.Flag{Name: payments.FlagFraudCheck, Percent: percent}
	for i := range 1000 {
		id := fmt.Sprintf("c-%s-%d", payments.DefaultFraudRule.Marker, i)
		if f.EnabledFor(id) == inside {
			return id
		}
	}
	t.Fatalf("no marked customer %v the %v%% rollout among 1000", map[bool]string{true: "inside", false: "outside"}[inside], percent)
	return ""
}

// TestFraudCheckFlagDeclinesSuspectOrdersOfItsRollout runs the saga with
// the fraud-check flag at 0 %, 25 % and 100 %: a suspect order of a
// customer inside the rollout is declined before it reaches the provider
// and the order is cancelled; outside the rollout it is paid as before.
func TestFraudCheckFlagDeclinesSuspectOrdersOfItsRollout(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	ctx := context.Background()
	tests := []struct {
		percent  float64
		customer string
		declined bool
	}{
		{0, markedCustomer(t, 0, false), false},
		{25, markedCustomer(t, 25, false), false},
		{25, markedCustomer(t, 25, true), true},
		{100, markedCustomer(t, 100, true), true},
		{100, "c-plain", false}, // in the rollout, but nothing suspect
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v%% %s", tc.percent, tc.customer), func(t *testing.T) {
			s := s.For(t)
			if _, _, err := s.Flags.Admin().Update(ctx, payments.FlagFraudCheck, func(f *flags.Flag) { f.Percent = tc.percent }); err != nil {
				t.Fatal(err)
			}
			if err := s.Flags.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			a := sku(t, "a")
			s.Restock(a, 1)
			wantStock(t, s, a, 1, 0)
			id := s.PlaceOrder(tc.customer, line(a, 1, 990))
			if !tc.declined {
				s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed",
					"payments.captured", "inventory.committed")
				if l, ok := ledgerOf(s, id); !ok || l.Status != provider.StatusCaptured {
					t.Errorf("ledger %+v, want captured", l)
				}
				return
			}
			s.WaitEvents(id, wait, "orders.placed", "inventory.reserved", "payments.declined", "orders.cancelled", "inventory.released")
			if st, reason := s.OrderStatus(id); st != events.StatusCancelled || reason != events.CancelPaymentDeclined {
				t.Errorf("order %s/%s, want cancelled/%s", st, reason, events.CancelPaymentDeclined)
			}
			var code string
			s.Query(&code, `SELECT decline_code FROM payments.payments WHERE order_id = $1`, id)
			if code != payments.DeclineFraudSuspected {
				t.Errorf("decline code %q, want %q", code, payments.DeclineFraudSuspected)
			}
			if l, ok := ledgerOf(s, id); ok {
				t.Errorf("the provider saw the fraud-suspect order: %+v", l)
			}
			wantStock(t, s, a, 1, 0)
		})
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
