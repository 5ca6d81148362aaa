package notifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/notifier"
)

// TestARefundIsAddressedFromTheOrdersReadModel: payments.refunded names
// no customer; the notifier finds it in the orders read model
// (public.orders), not in the orders participant's table, and a refund of
// an order the read model does not hold yet fails (transient: retried)
// rather than being dropped.
func TestARefundIsAddressedFromTheOrdersReadModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx, err := testenv.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	customer, known, unknown := "c-"+uuid.NewString()[:8], uuid.NewString(), uuid.NewString()
	now := time.Now().UTC()
	// Only the read model holds the order: orders.orders has no row.
	if _, err := tx.Exec(ctx, `
		INSERT INTO public.orders (order_id, customer_id, status, currency, total, item_count, lines, placed_at, deadline, updated_at, last_seq)
		VALUES ($1, $2, 'cancelled', 'EUR', 2500, 1, '[]', $3, $3, $3, 1)`, known, customer, now); err != nil {
		t.Fatal(err)
	}
	refunded := func(orderID string) error {
		ev, err := events.New(events.PaymentRefundedV1, orderID, events.PaymentSettled{
			OrderID: orderID, AuthorizationID: "auth-" + orderID[:8], OperationID: "ref-" + orderID[:8], Amount: 2500, Currency: "EUR"})
		if err != nil {
			t.Fatal(err)
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notifier.New().Handle(ctx, sp, ev); err != nil {
			_ = sp.Rollback(ctx)
			return err
		}
		return sp.Commit(ctx)
	}
	if err := refunded(known); err != nil {
		t.Fatalf("refund of an order the read model holds: %v", err)
	}
	var kind, body string
	if err := tx.QueryRow(ctx, `SELECT kind, body FROM public.notifications WHERE user_id = $1 AND order_id = $2`, customer, known).
		Scan(&kind, &body); err != nil {
		t.Fatalf("the refund's notification to %s: %v", customer, err)
	}
	if kind != events.KindPaymentRefunded || body == "" {
		t.Errorf("notification kind %q body %q, want %q with a body", kind, body, events.KindPaymentRefunded)
	}
	err = refunded(unknown)
	if err == nil {
		t.Fatal("refund of an order the read model does not hold: no error, want a retry")
	}
	if runner.IsPermanent(err) {
		t.Errorf("refund of an order the read model does not hold: %v is permanent, want a retry", err)
	}
}
