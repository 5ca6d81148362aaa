package payments_test

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

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
)

// newCancelBench is a payBench whose routers are the payments
// participant's reactions to orders.cancelled (void_payment, then
// refund_payment, as the saga registers them).
func newCancelBench(t *testing.T) *payBench {
	t.Helper()
	b := newPayBench(t)
	void, err := payments.NewVoidPayment(b.client)
	if err != nil {
		t.Fatal(err)
	}
	refund, err := payments.NewRefundPayment(b.client)
	if err != nil {
		t.Fatal(err)
	}
	if b.router, err = handlers.NewRouter(void, refund); err != nil {
		t.Fatal(err)
	}
	if b.oneByOne, err = handlers.NewRouter(withoutBatch{void}, withoutBatch{refund}); err != nil {
		t.Fatal(err)
	}
	return b
}

func cancelled(t *testing.T, orderID string, total int64, previous string) *event.Event {
	t.Helper()
	ev, err := events.New(events.OrderCancelledV1, orderID, events.OrderCancelled{OrderID: orderID, CustomerID: "c-pay-batch", Currency: "EUR",
		Total: total, Reason: "customer asked", PreviousStatus: previous, CancelledAt: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// captureAt authorizes and captures orderID at the simulator (keys as
// authorize_payment's and capture_payment's) and returns the authorization.
func (b *payBench) captureAt(orderID string, total int64) provider.Authorization {
	b.t.Helper()
	a := b.authorizeAt(orderID, total)
	if _, err := b.client.Capture(context.Background(), "capture:"+orderID, a.ID, total); err != nil {
		b.t.Fatalf("capture %s: %v", orderID, err)
	}
	return a
}

// byOrder is r with its rows stably sorted by kind and order: the batch
// runs void_payment over all its messages, then refund_payment, so the
// saga log steps of different orders may interleave differently than
// message by message; those of one order keep their order.
func byOrder(r result) result {
	key := func(row string) string {
		f := strings.Fields(row)
		if len(f) < 2 {
			return row
		}
		return f[0] + " " + f[1]
	}
	r.rows = slices.Clone(r.rows)
	slices.SortStableFunc(r.rows, func(a, b string) int { return strings.Compare(key(a), key(b)) })
	return r
}

// TestCancelBatchIsHandleMessageByMessage: the set-based paths of
// void_payment and refund_payment leave the same rows (payments, payment
// ops, saga log per order) and emit the same events as Handle message by
// message, over orders cancelled before authorization (no row; one
// cancelled twice), after authorization (voided; one cancelled twice;
// one confirmed, left to capture_payment), after capture (refunded; one
// cancelled twice) and a declined one; in a fixed number of statements;
// each authorization is voided or refunded once at the provider.
func TestCancelBatchIsHandleMessageByMessage(t *testing.T) {
	b := newCancelBench(t)
	var orders, unknown, authorized, captured []string
	var msgs []*event.Event
	var seed strings.Builder
	for i := range 4 {
		id := uuid.NewString()
		orders, unknown = append(orders, id), append(unknown, id)
		msgs = append(msgs, cancelled(t, id, int64(500+i), events.StatusPending))
	}
	for i := range 6 {
		id, total := uuid.NewString(), int64(1000+100*i)
		a := b.authorizeAt(id, total)
		orders, authorized = append(orders, id), append(authorized, id)
		seed.WriteString(paymentRow(id, total, "authorized", a.ID, false))
		msgs = append(msgs, cancelled(t, id, total, events.StatusPending))
	}
	for i := range 5 {
		id, total := uuid.NewString(), int64(3000+100*i)
		a := b.captureAt(id, total)
		orders, captured = append(orders, id), append(captured, id)
		seed.WriteString(paymentRow(id, total, "captured", a.ID, false))
		msgs = append(msgs, cancelled(t, id, total, events.StatusConfirmed))
	}
	confirmedAuth, declined := uuid.NewString(), uuid.NewString()
	ca := b.authorizeAt(confirmedAuth, 2500)
	orders = append(orders, confirmedAuth, declined)
	seed.WriteString(paymentRow(confirmedAuth, 2500, "authorized", ca.ID, false))
	seed.WriteString(paymentRow(declined, 900, "declined", "", false))
	msgs = slices.Insert(msgs, 7, cancelled(t, confirmedAuth, 2500, events.StatusConfirmed))
	msgs = slices.Insert(msgs, 3, cancelled(t, declined, 900, events.StatusPending))
	// Duplicates, later in the stream: before authorization, voided, refunded.
	msgs = append(msgs, cancelled(t, unknown[1], 501, events.StatusPending),
		cancelled(t, authorized[2], 1200, events.StatusPending),
		cancelled(t, captured[3], 3300, events.StatusConfirmed))
	msgs = slices.Insert(msgs, 12, cancelled(t, unknown[2], 502, events.StatusPending))

	per := b.perMessage(seed.String(), orders, msgs)
	for i, err := range per.errs {
		if err != nil {
			t.Fatalf("Handle of message %d: %v", i, err)
		}
	}
	bat, err := b.batch(seed.String(), orders, msgs)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	sameResults(t, byOrder(per), byOrder(bat))

	var voided, refunded, silent int
	for _, evs := range bat.outs {
		switch ts := types(evs); {
		case len(ts) == 0:
			silent++
		case slices.Equal(ts, []string{events.PaymentVoidedV1}):
			voided++
		case slices.Equal(ts, []string{events.PaymentRefundedV1}):
			refunded++
		default:
			t.Errorf("a message emitted %v", ts)
		}
	}
	if voided != 6 || refunded != 5 || silent != len(msgs)-11 {
		t.Errorf("%d voided, %d refunded, %d silent; want 6, 5, %d", voided, refunded, silent, len(msgs)-11)
	}
	for _, want := range []string{
		"log " + unknown[0] + " void_payment payments " + msgs[0].ID() + " " + events.OrderCancelledV1 + " ignored nothing recorded",
		"log " + confirmedAuth + " void_payment payments ",
		"payment " + unknown[1] + " c-pay-batch EUR 501 new auth= code= confirmed=f cancelled=t",
		"payment " + declined + " c-pay-batch EUR 900 declined auth= code= confirmed=f cancelled=t",
	} {
		if !slices.ContainsFunc(bat.rows, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no row %q in\n  %s", want, strings.Join(bat.rows, "\n  "))
		}
	}
	for _, id := range authorized {
		if got := b.sim.Authorizations(id); len(got) != 1 || got[0].Status != provider.StatusVoided {
			t.Errorf("order %s: the provider holds %+v, want one voided authorization", id, got)
		}
	}
	for _, id := range captured {
		if got := b.sim.Authorizations(id); len(got) != 1 || got[0].Status != provider.StatusRefunded {
			t.Errorf("order %s: the provider holds %+v, want one refunded authorization", id, got)
		}
	}
	if got := b.sim.Authorizations(confirmedAuth); len(got) != 1 || got[0].Status != provider.StatusAuthorized {
		t.Errorf("the confirmed order's authorization: %+v, want it left authorized", got)
	}
	before, err := b.batchOn(b.oneByOne, seed.String(), orders, msgs)
	if err != nil {
		t.Fatalf("HandleBatch one by one: %v", err)
	}
	sameResults(t, byOrder(before), byOrder(bat))
	t.Logf("void_payment + refund_payment, %d messages: %d statements one by one in the runner's fast path (%d under savepoints, Handle each), %d set-based",
		len(msgs), before.stmts, per.stmts, bat.stmts)
	if bat.stmts > 8 {
		t.Errorf("the batch sent %d statements, want at most 8 (void: insert, lock, insert ops, update payments; refund: lock, insert ops, update payments; saga log)", bat.stmts)
	}
}

// TestCancelBatchBeforeAuthorizationOnly: a batch of cancellations of
// orders payments never saw is the same as message by message in two
// statements and the saga log.
func TestCancelBatchBeforeAuthorizationOnly(t *testing.T) {
	b := newCancelBench(t)
	var orders []string
	var msgs []*event.Event
	for i := range 8 {
		id := uuid.NewString()
		orders = append(orders, id)
		msgs = append(msgs, cancelled(t, id, int64(700+i), events.StatusPending))
	}
	msgs = append(msgs, cancelled(t, orders[0], 700, events.StatusPending))
	per := b.perMessage("", orders, msgs)
	for i, err := range per.errs {
		if err != nil {
			t.Fatalf("Handle of message %d: %v", i, err)
		}
	}
	bat, err := b.batch("", orders, msgs)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	sameResults(t, byOrder(per), byOrder(bat))
	if bat.stmts > 3 {
		t.Errorf("the batch sent %d statements, want at most 3 (insert, refund's lock, saga log)", bat.stmts)
	}
}

// TestCancelBatchProviderFailure: a void or refund that fails fails the
// batch; message by message Handle then behaves as before: the refused
// order's message fails permanently, the others are voided or refunded
// once (the batch's calls replayed by their keys); during an outage
// every message that calls the provider waits (unavailable, not
// permanent).
func TestCancelBatchProviderFailure(t *testing.T) {
	b := newCancelBench(t)
	t.Run("refused", func(t *testing.T) {
		var orders []string
		var msgs []*event.Event
		var seed strings.Builder
		for i := range 6 {
			id, total := uuid.NewString(), int64(1500+i)
			orders = append(orders, id)
			var a provider.Authorization
			prev := events.StatusPending
			if i%2 == 0 {
				a = b.authorizeAt(id, total)
				seed.WriteString(paymentRow(id, total, "authorized", a.ID, false))
			} else {
				a = b.captureAt(id, total)
				seed.WriteString(paymentRow(id, total, "captured", a.ID, false))
				prev = events.StatusConfirmed
			}
			msgs = append(msgs, cancelled(t, id, total, prev))
		}
		// Payments holds orders[2] authorized, but the provider has it
		// captured (a capture it does not know of): the void is refused.
		refused := orders[2]
		held := b.sim.Authorizations(refused)
		if _, err := b.client.Capture(context.Background(), "capture:"+refused, held[0].ID, held[0].Amount); err != nil {
			t.Fatal(err)
		}
		_, err := b.batch(seed.String(), orders, msgs)
		if !errors.Is(err, provider.ErrRefused) {
			t.Fatalf("HandleBatch = %v, want the provider's refusal", err)
		}
		per := b.perMessage(seed.String(), orders, msgs)
		for i, err := range per.errs {
			id := orders[i]
			switch {
			case id == refused:
				if !runner.IsPermanent(err) || !errors.Is(err, provider.ErrRefused) {
					t.Errorf("Handle of the refused order = %v, want a permanent refusal", err)
				}
			case err != nil:
				t.Errorf("Handle of order %s: %v", id, err)
			default:
				want, status := events.PaymentVoidedV1, provider.StatusVoided
				if i%2 == 1 {
					want, status = events.PaymentRefundedV1, provider.StatusRefunded
				}
				got := b.sim.Authorizations(id)
				if len(got) != 1 || got[0].Status != status {
					t.Errorf("order %s: the provider holds %+v, want one %s", id, got, status)
				}
				if ts := types(per.outs[i]); !slices.Equal(ts, []string{want}) {
					t.Errorf("order %s emitted %v, want %s", id, ts, want)
				}
			}
		}
	})
	t.Run("outage", func(t *testing.T) {
		var orders []string
		var msgs []*event.Event
		var seed strings.Builder
		for i := range 3 {
			id, total := uuid.NewString(), int64(1700+i)
			orders = append(orders, id)
			a := b.authorizeAt(id, total)
			seed.WriteString(paymentRow(id, total, "authorized", a.ID, false))
			msgs = append(msgs, cancelled(t, id, total, events.StatusPending))
		}
		fresh := uuid.NewString() // never seen by payments: no call
		orders, msgs = append(orders, fresh), append(msgs, cancelled(t, fresh, 100, events.StatusPending))
		f := b.sim.Faults()
		f.Outage = provider.OutageError
		if err := b.sim.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		defer func() {
			f.Outage = provider.OutageOff
			_ = b.sim.SetFaults(f)
		}()
		if _, err := b.batch(seed.String(), orders, msgs); !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("HandleBatch = %v, want unavailable", err)
		}
		per := b.perMessage(seed.String(), orders, msgs)
		for i, err := range per.errs {
			if orders[i] == fresh {
				if err != nil {
					t.Errorf("Handle of the fresh order: %v", err)
				}
				continue
			}
			if !errors.Is(err, provider.ErrUnavailable) || runner.IsPermanent(err) {
				t.Errorf("Handle of order %s = %v, want unavailable (a delayed redelivery)", orders[i], err)
			}
		}
	})
}

// TestCancelBatchCallsTheProviderConcurrently: the voids, and the
// refunds, of a batch overlap (at most 8 at once).
func TestCancelBatchCallsTheProviderConcurrently(t *testing.T) {
	b := newCancelBench(t)
	var seed strings.Builder
	var orders []string
	var voids, refunds []*event.Event
	for i := range 24 {
		id, total := uuid.NewString(), int64(1000+i)
		orders = append(orders, id)
		if i%2 == 0 {
			a := b.authorizeAt(id, total)
			seed.WriteString(paymentRow(id, total, "authorized", a.ID, false))
			voids = append(voids, cancelled(t, id, total, events.StatusPending))
		} else {
			a := b.captureAt(id, total)
			seed.WriteString(paymentRow(id, total, "captured", a.ID, false))
			refunds = append(refunds, cancelled(t, id, total, events.StatusConfirmed))
		}
	}
	f := b.sim.Faults()
	f.Latency = provider.Duration(20 * time.Millisecond)
	if err := b.sim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	for name, msgs := range map[string][]*event.Event{"void": voids, "refund": refunds} {
		b.calls.peak.Store(0)
		if _, err := b.batch(seed.String(), orders, msgs); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", name, err))
		}
		if p := b.calls.peak.Load(); p < 2 || p > 8 {
			t.Errorf("%s: peak %d provider calls at once, want 2..8", name, p)
		}
	}
}
