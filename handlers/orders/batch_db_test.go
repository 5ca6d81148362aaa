package orders

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/handlertest"
	"github.com/tradewind/tradewind/internal/runner"
)

func authorized(t *testing.T, orderID, authID string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.PaymentAuthorizedV1, orderID,
		events.PaymentAuthorized{OrderID: orderID, AuthorizationID: authID, Amount: 1500, Currency: "EUR"},
		events.WithCorrelation("corr-"+authID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

// seedOrder inserts an order (in the test's transaction).
func seedOrder(t *testing.T, tx pgx.Tx, id, status string, deadline time.Time) {
	t.Helper()
	handlertest.MustExec(t, tx, `
		INSERT INTO orders.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, correlation_id)
		VALUES ($1, 'c-batch', $2, 'EUR', 1500, '[]', $3, $4, $5, 'placed-'||$4)`,
		id, status, deadline, uuid.NewString(), deadline.Add(-time.Hour))
}

// TestConfirmBatchEqualsOneByOne: one batch of payments.authorized (two
// of one order, one spelled in capitals; an order past its deadline,
// twice; an order already cancelled; one already confirmed) leaves the
// same order rows and saga log and emits the same events as Handle
// message by message, in a fixed number of statements.
func TestConfirmBatchEqualsOneByOne(t *testing.T) {
	tx := handlertest.SeedTx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	h := &ConfirmOrder{now: func() time.Time { return now }}
	fresh, twice, late, gone, done := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedOrder(t, tx, fresh, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, twice, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, late, events.StatusPending, now.Add(-time.Second))
	seedOrder(t, tx, gone, events.StatusCancelled, now.Add(time.Minute))
	seedOrder(t, tx, done, events.StatusConfirmed, now.Add(time.Minute))
	ids := []string{fresh, twice, late, gone, done}
	msgs := []runner.Msg{
		authorized(t, twice, "a1"),
		authorized(t, fresh, "a2"),
		authorized(t, late, "a3"),
		authorized(t, strings.ToUpper(twice), "a4"),
		authorized(t, gone, "a5"),
		authorized(t, late, "a6"),
		authorized(t, done, "a7"),
	}
	dump := func(tx pgx.Tx) string {
		return handlertest.DumpRows(t, tx,
			handlertest.Query{Name: "orders", SQL: `SELECT row_to_json(o)::text FROM orders.orders o WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, Args: []any{ids}},
			handlertest.Query{Name: "saga", SQL: handlertest.SagaLogQuery, Args: []any{ids}})
	}

	each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs, h), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := handlertest.UnderSavepoint(t, tx, handlertest.ThroughRouter(t, msgs, h), dump)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch.Rows != each.Rows {
		t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.Rows, each.Rows)
	}
	if err := handlertest.SameEvents(each.Out, batch.Out); err != nil {
		t.Errorf("events of the batch differ from one by one: %v", err)
	}
	// The outcomes themselves, so that equal but wrong runs fail too.
	var got []string
	for _, evs := range batch.Out {
		switch {
		case len(evs) == 0:
			got = append(got, "-")
		case evs[0].Type() == events.OrderCancelledV1:
			var c events.OrderCancelled
			if err := events.DecodeData(evs[0], &c); err != nil {
				t.Fatal(err)
			}
			got = append(got, "cancelled "+c.Reason+" from "+c.PreviousStatus)
		default:
			got = append(got, evs[0].Type())
		}
	}
	want := []string{events.OrderConfirmedV1, events.OrderConfirmedV1, "cancelled timeout from pending", "-", "-", "-", "-"}
	if !slices.Equal(got, want) {
		t.Errorf("batch emitted %q, want %q", got, want)
	}
	// lock, confirm, cancel, saga log: whatever the batch's size.
	if batch.Statements != 4 {
		t.Errorf("the batch took %d statements, want 4 (one by one: %d)", batch.Statements, each.Statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.Statements, batch.Statements)
}

// TestConfirmBatchFailsOnAnUnknownOrder: an order not recorded yet fails
// the batch with errUnknownOrder (the runner redoes it message by message
// and retries that one), as Handle fails that message.
func TestConfirmBatchFailsOnAnUnknownOrder(t *testing.T) {
	tx := handlertest.SeedTx(t)
	h := NewConfirmOrder()
	known := uuid.NewString()
	seedOrder(t, tx, known, events.StatusPending, time.Now().Add(time.Minute))
	msgs := []runner.Msg{authorized(t, known, "k1"), authorized(t, uuid.NewString(), "u1")}
	if _, err := handlertest.UnderSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, func(pgx.Tx) string { return "" }); !errors.Is(err, errUnknownOrder) {
		t.Errorf("HandleBatch = %v, want errUnknownOrder", err)
	}
	if _, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs[1:], h), func(pgx.Tx) string { return "" }); !errors.Is(err, errUnknownOrder) {
		t.Errorf("Handle = %v, want errUnknownOrder", err)
	}
}

func stockRejected(t *testing.T, orderID, reason string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.StockRejectedV1, orderID, events.StockRejected{OrderID: orderID, Reason: reason, SKU: "sku-x", Requested: 2},
		events.WithCorrelation("corr-"+orderID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

func paymentDeclined(t *testing.T, orderID string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.PaymentDeclinedV1, orderID, events.PaymentDeclined{OrderID: orderID, Amount: 1500, Currency: "EUR", Code: "card_declined"},
		events.WithCorrelation("corr-"+orderID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

// TestCancelPendingBatchEqualsOneByOne: batches of inventory.rejected and
// of payments.declined (a pending order twice, once spelled in capitals,
// with different reasons; an order already confirmed; one already
// cancelled) leave the same order rows and saga log and emit the same
// events as Handle message by message, in three statements.
func TestCancelPendingBatchEqualsOneByOne(t *testing.T) {
	tx := handlertest.SeedTx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	p1, p2, conf, canc := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedOrder(t, tx, p1, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, p2, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, conf, events.StatusConfirmed, now.Add(time.Minute))
	seedOrder(t, tx, canc, events.StatusCancelled, now.Add(time.Minute))
	ids := []string{p1, p2, conf, canc}
	dump := func(tx pgx.Tx) string {
		return handlertest.DumpRows(t, tx,
			handlertest.Query{Name: "orders", SQL: `SELECT row_to_json(o)::text FROM orders.orders o WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, Args: []any{ids}},
			handlertest.Query{Name: "saga", SQL: handlertest.SagaLogQuery, Args: []any{ids}})
	}
	C := events.OrderCancelledV1
	for _, tc := range []struct {
		name string
		h    handlers.Reactor
		msgs []runner.Msg
		want []string
	}{
		{"cancel_on_rejection", withNow(NewCancelOnRejection(), clock), []runner.Msg{
			stockRejected(t, p1, events.RejectOutOfStock),
			stockRejected(t, conf, events.RejectOutOfStock),
			stockRejected(t, strings.ToUpper(p1), events.RejectUnknownSKU),
			stockRejected(t, canc, events.RejectOutOfStock),
			stockRejected(t, p2, events.RejectUnknownSKU),
		}, []string{C, "-", "-", "-", C}},
		{"cancel_on_decline", withNow(NewCancelOnDecline(), clock), []runner.Msg{
			paymentDeclined(t, strings.ToUpper(p2)),
			paymentDeclined(t, conf),
			paymentDeclined(t, p2),
			paymentDeclined(t, canc),
			paymentDeclined(t, p1),
		}, []string{C, "-", "-", "-", C}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(tc.msgs, tc.h), dump)
			if err != nil {
				t.Fatal(err)
			}
			batch, err := handlertest.UnderSavepoint(t, tx, handlertest.ThroughRouter(t, tc.msgs, tc.h), dump)
			if err != nil {
				t.Fatalf("HandleBatch: %v", err)
			}
			if batch.Rows != each.Rows {
				t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.Rows, each.Rows)
			}
			if err := handlertest.SameEvents(each.Out, batch.Out); err != nil {
				t.Errorf("events of the batch differ from one by one: %v", err)
			}
			if got := handlertest.EventTypes(batch.Out); !slices.Equal(got, tc.want) {
				t.Errorf("batch emitted %q, want %q", got, tc.want)
			}
			// lock, cancel, saga log.
			if batch.Statements != 3 {
				t.Errorf("the batch took %d statements, want 3 (one by one: %d)", batch.Statements, each.Statements)
			}
			t.Logf("%d messages: %d statements one by one, %d in a batch", len(tc.msgs), each.Statements, batch.Statements)
		})
	}
}

// TestCancelPendingBatchFailsOnAnUnknownOrder: an order not recorded yet
// fails the batch with errUnknownOrder (the runner redoes it message by
// message and retries that one), as Handle fails that message.
func TestCancelPendingBatchFailsOnAnUnknownOrder(t *testing.T) {
	tx := handlertest.SeedTx(t)
	known := uuid.NewString()
	seedOrder(t, tx, known, events.StatusPending, time.Now().Add(time.Minute))
	h := NewCancelOnDecline()
	msgs := []runner.Msg{paymentDeclined(t, known), paymentDeclined(t, uuid.NewString())}
	none := func(pgx.Tx) string { return "" }
	if _, err := handlertest.UnderSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, none); !errors.Is(err, errUnknownOrder) {
		t.Errorf("HandleBatch = %v, want errUnknownOrder", err)
	}
	if _, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs[1:], h), none); !errors.Is(err, errUnknownOrder) {
		t.Errorf("Handle = %v, want errUnknownOrder", err)
	}
}

// TestBatchesCostAFixedNumberOfStatements: 60 confirmations and 60
// declines cost as many statements in a batch as a few do; one by one
// they cost 2 per message (plus the saga log).
func TestBatchesCostAFixedNumberOfStatements(t *testing.T) {
	const n = 60
	tx := handlertest.SeedTx(t)
	now := time.Now().UTC()
	var confirms, declines []runner.Msg
	for i := range n {
		id := uuid.NewString()
		seedOrder(t, tx, id, events.StatusPending, now.Add(time.Minute))
		confirms = append(confirms, authorized(t, id, fmt.Sprint("n", i)))
		declines = append(declines, paymentDeclined(t, id))
	}
	none := func(pgx.Tx) string { return "" }
	for _, tc := range []struct {
		name          string
		h             handlers.Reactor
		msgs          []runner.Msg
		each, inBatch int
	}{
		// lock, confirm, saga log.
		{"confirm_order", &ConfirmOrder{now: func() time.Time { return now }}, confirms, 2*n + 1, 3},
		// lock, cancel, saga log.
		{"cancel_on_decline", withNow(NewCancelOnDecline(), func() time.Time { return now }), declines, 2*n + 1, 3},
	} {
		each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(tc.msgs, tc.h), none)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := handlertest.UnderSavepoint(t, tx, handlertest.ThroughRouter(t, tc.msgs, tc.h), none)
		if err != nil {
			t.Fatal(err)
		}
		if each.Statements != tc.each || batch.Statements != tc.inBatch {
			t.Errorf("%s: %d statements one by one, %d in a batch; want %d and %d", tc.name, each.Statements, batch.Statements, tc.each, tc.inBatch)
		}
		t.Logf("%s, %d messages: %d statements one by one, %d in a batch", tc.name, n, each.Statements, batch.Statements)
	}
}

// withNow sets h's clock.
func withNow(h *CancelOnFailure, now func() time.Time) *CancelOnFailure {
	h.now = now
	return h
}
