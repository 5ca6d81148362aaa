package checker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is a saga state built row by row in a test transaction, with the
// EVENTS stream and the real provider simulator kept in step, so that a
// test can break exactly one thing and see the checker catch it.
type world struct {
	t      *testing.T
	ctx    context.Context
	tx     pgx.Tx
	js     jetstream.JetStream
	payURL string
	orders map[string]string // path -> order id
}

func (w *world) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.tx.Exec(w.ctx, sql, args...); err != nil {
		w.t.Fatalf("%s: %v", strings.TrimSpace(sql), err)
	}
}

// event puts a message on the EVENTS stream the way the relay would:
// ce-id header, Nats-Msg-Id = msgID.
func (w *world) event(name, aggregate, ceID, msgID string) {
	w.t.Helper()
	m := nats.NewMsg("evt." + name + "." + aggregate)
	m.Header.Set("ce-id", ceID)
	m.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := w.js.PublishMsg(w.ctx, m); err != nil {
		w.t.Fatalf("publish %s: %v", m.Subject, err)
	}
}

func (w *world) events(order string, names ...string) {
	w.t.Helper()
	for _, n := range names {
		id := uuid.NewString()
		w.event(n, order, id, id)
	}
}

// pay calls the provider simulator and returns the id it answers with.
func (w *world) pay(path, key string, body any, wantStatus int) string {
	w.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(w.ctx, http.MethodPost, w.payURL+path, bytes.NewReader(b))
	req.Header.Set(provider.HeaderIdempotencyKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != wantStatus {
		w.t.Fatalf("POST %s: %s (%v), want %d", path, resp.Status, err, wantStatus)
	}
	return out.ID
}

func (w *world) sku(sku string, restocked int64) {
	w.exec(`INSERT INTO inventory.inventory (sku, on_hand, reserved) VALUES ($1, $2, 0)`, sku, restocked)
	w.exec(`INSERT INTO inventory.restocks (event_id, sku, quantity) VALUES ($1, $2, $3)`, uuid.NewString(), sku, restocked)
	w.events(sku, "inventory.restocked")
}

// order adds an order that went down path, one minute ago, for qty units
// of sku at 1000 each. Paths: happy, out_of_stock, declined, returned
// (confirmed, then cancelled by the customer), voided (authorized, then
// timed out), pending (reserved, deadline ahead: in flight).
func (w *world) order(path, sku string, qty int64) string {
	w.t.Helper()
	id := uuid.NewString()
	w.orders[path] = id
	total := qty * 1000
	customer := "c-1"
	if path == "declined" {
		customer = "c-decline"
	}
	status, reason, prev := "cancelled", path, "pending"
	switch path {
	case "happy":
		status, reason, prev = "confirmed", "", ""
	case "declined":
		reason = "payment_declined"
	case "returned":
		reason, prev = "customer", "confirmed"
	case "voided":
		reason = "timeout"
	case "pending":
		status, reason, prev = "pending", "", ""
	}
	deadline, changed := "now() - interval '30 seconds'", "now() - interval '1 minute'"
	if path == "pending" {
		deadline, changed = "now() + interval '30 seconds'", "now()"
	}
	w.exec(`INSERT INTO orders.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by,
			created_at, updated_at, cancel_reason, previous_status, confirmed_at, cancelled_at)
		VALUES ($1, $2, $3, 'EUR', $4, '[]', `+deadline+`, $5, `+changed+`, `+changed+`, nullif($6, ''), nullif($7, ''),
			CASE WHEN $3 = 'confirmed' OR $7 = 'confirmed' THEN `+changed+` END,
			CASE WHEN $3 = 'cancelled' THEN `+changed+` END)`,
		id, customer, status, total, uuid.NewString(), reason, prev)

	stock := map[string]string{"happy": "committed", "out_of_stock": "rejected", "declined": "released",
		"returned": "returned", "voided": "released", "pending": "reserved"}[path]
	w.exec(`INSERT INTO inventory.stock_orders (order_id, status) VALUES ($1, $2)`, id, stock)
	if stock != "rejected" {
		w.exec(`INSERT INTO inventory.reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, $4)`, id, sku, qty, stock)
	}
	switch stock {
	case "committed":
		w.exec(`UPDATE inventory.inventory SET on_hand = on_hand - $2 WHERE sku = $1`, sku, qty)
	case "reserved":
		w.exec(`UPDATE inventory.inventory SET reserved = reserved + $2 WHERE sku = $1`, sku, qty)
	}

	auth := provider.AuthorizeRequest{OrderID: id, CustomerID: customer, Amount: total, Currency: "EUR"}
	payStatus := map[string]string{"happy": "captured", "out_of_stock": "new", "declined": "declined",
		"returned": "refunded", "voided": "voided", "pending": "new"}[path]
	var authID string
	switch path {
	case "declined":
		w.pay("/v1/authorizations", id, auth, http.StatusPaymentRequired)
	case "happy", "returned", "voided":
		authID = w.pay("/v1/authorizations", id, auth, http.StatusCreated)
	}
	w.exec(`INSERT INTO payments.payments (order_id, customer_id, currency, amount, status, authorization_id, decline_code)
		VALUES ($1, $2, 'EUR', $3, $4, nullif($5, ''), CASE WHEN $4 = 'declined' THEN 'card_declined' END)`,
		id, customer, total, payStatus, authID)
	op := func(op, key string, amount int64, providerID string) {
		w.exec(`INSERT INTO payments.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, op, providerID, key, amount, uuid.NewString())
	}
	if authID != "" {
		op("authorize", id, total, authID)
		w.exec(`UPDATE orders.orders SET authorization_id = $2 WHERE order_id = $1 AND (status = 'confirmed' OR previous_status = 'confirmed')`, id, authID)
	}
	amount := provider.AmountRequest{Amount: total}
	switch path {
	case "happy", "returned":
		op("capture", "capture:"+id, total, w.pay("/v1/authorizations/"+authID+"/capture", "capture:"+id, amount, http.StatusCreated))
	case "voided":
		op("void", "void:"+id, total, w.pay("/v1/authorizations/"+authID+"/void", "void:"+id, struct{}{}, http.StatusCreated))
	}
	if path == "returned" {
		op("refund", "refund:"+id, total, w.pay("/v1/authorizations/"+authID+"/refund", "refund:"+id, amount, http.StatusCreated))
	}

	happy := []string{"orders.placed", "inventory.reserved", "payments.authorized", "orders.confirmed", "payments.captured", "inventory.committed"}
	w.events(id, map[string][]string{
		"happy":        happy,
		"out_of_stock": {"orders.placed", "inventory.rejected", "orders.cancelled"},
		"declined":     {"orders.placed", "inventory.reserved", "payments.declined", "orders.cancelled", "inventory.released"},
		"returned":     append(happy, "orders.cancelled", "payments.refunded", "inventory.returned"),
		"voided":       {"orders.placed", "inventory.reserved", "payments.authorized", "orders.cancelled", "payments.voided", "inventory.released"},
		"pending":      {"orders.placed", "inventory.reserved"},
	}[path]...)
	return id
}

// newWorld builds, inside a transaction rolled back when the test ends, a
// consistent state with one order on every path.
func newWorld(t *testing.T, payURL string, inFlight bool) *world {
	t.Helper()
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	tx, err := testenv.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	w := &world{t: t, ctx: ctx, tx: tx, js: js, payURL: payURL, orders: map[string]string{}}
	w.sku("SKU-A", 10)
	w.sku("SKU-B", 3)
	w.order("happy", "SKU-A", 2)
	w.order("out_of_stock", "SKU-B", 5)
	w.order("declined", "SKU-A", 1)
	w.order("returned", "SKU-A", 3)
	w.order("voided", "SKU-B", 1)
	if inFlight {
		w.order("pending", "SKU-A", 1)
	}
	return w
}

func (w *world) check(ledger checker.LedgerSource) *checker.Report {
	w.t.Helper()
	c, err := checker.New(checker.Options{Pool: testenv.Pool(w.t), JS: w.js, Ledger: ledger, Slack: checker.DefaultSlack, Settle: checker.DefaultSettle})
	if err != nil {
		w.t.Fatal(err)
	}
	rep, err := c.RunIn(w.ctx, w.tx)
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

func startProvider(t *testing.T) (string, checker.LedgerSource) {
	t.Helper()
	srv, err := provider.NewServer(provider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, checker.HTTPLedger{URL: hs.URL}
}

func TestConsistentStateHasNoViolations(t *testing.T) {
	payURL, ledger := startProvider(t)
	for _, inFlight := range []bool{false, true} {
		t.Run(fmt.Sprintf("in_flight=%v", inFlight), func(t *testing.T) {
			w := newWorld(t, payURL, inFlight)
			rep := w.check(ledger)
			for _, v := range rep.Violations {
				t.Errorf("violation: %s", v)
			}
			for _, r := range rep.Results {
				if r.Skipped != "" {
					t.Errorf("check %s skipped: %s", r.Check, r.Skipped)
				}
			}
			wantOrders := 5
			if inFlight {
				wantOrders = 6
			}
			if rep.Orders != wantOrders || rep.SKUs != 2 || rep.LedgerEntries == 0 || rep.StreamEvents < 30 {
				t.Errorf("looked at %d orders, %d SKUs, %d ledger entries, %d events", rep.Orders, rep.SKUs, rep.LedgerEntries, rep.StreamEvents)
			}
		})
	}
}

// A system that has taken no order yet (an empty EVENTS stream, an empty
// ledger, no rows) has no violation: the stream and the ledger reach the
// checks as empty arrays, not null.
func TestEmptySystemHasNoViolations(t *testing.T) {
	_, ledger := startProvider(t)
	_, _, js := testenv.JetStream(t) // the streams, and nothing in them
	c, err := checker.New(checker.Options{Pool: testenv.Pool(t), JS: js, Ledger: ledger, Slack: checker.DefaultSlack, Settle: checker.DefaultSettle})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := testenv.Pool(t).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rep, err := c.RunIn(context.Background(), tx)
	if err != nil {
		t.Fatalf("check of an empty system: %v", err)
	}
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	if rep.StreamEvents != 0 || rep.LedgerEntries != 0 {
		t.Errorf("looked at %d events and %d ledger entries, want none", rep.StreamEvents, rep.LedgerEntries)
	}
}

// TestEveryCheckCatchesItsViolation breaks the consistent world in one way
// per case and wants the named check to report the order or SKU at fault:
// no check is unable to fail.
func TestEveryCheckCatchesItsViolation(t *testing.T) {
	payURL, ledger := startProvider(t)
	cases := []struct {
		check   string
		subject string // "order <path>" or "sku <sku>"
		breakIt func(w *world)
	}{
		{"order-terminal", "order overdue", func(w *world) {
			id := uuid.NewString()
			w.orders["overdue"] = id
			w.exec(`INSERT INTO orders.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by)
				VALUES ($1, 'c-1', 'pending', 'EUR', 1000, '[]', now() - interval '1 minute', 'x')`, id)
		}},
		{"stock-non-negative", "sku SKU-B", func(w *world) {
			w.exec(`ALTER TABLE inventory.inventory DROP CONSTRAINT inventory_reserved_within_on_hand`)
			w.exec(`UPDATE inventory.inventory SET reserved = on_hand + 1 WHERE sku = 'SKU-B'`)
		}},
		{"stock-balance", "sku SKU-A", func(w *world) {
			w.exec(`UPDATE inventory.inventory SET on_hand = on_hand - 1 WHERE sku = 'SKU-A'`)
		}},
		{"reservation-settled", "order happy", func(w *world) {
			w.exec(`UPDATE inventory.reservations SET status = 'reserved' WHERE order_id = $1`, w.orders["happy"])
		}},
		{"stock-at-rest", "sku SKU-A", func(w *world) {
			// A reservation leaked without a reservation row: only the SKU shows it.
			w.exec(`ALTER TABLE inventory.inventory DROP CONSTRAINT inventory_reserved_within_on_hand`)
			w.exec(`UPDATE inventory.inventory SET reserved = 1 WHERE sku = 'SKU-A'`)
		}},
		{"confirmed-order", "order happy", func(w *world) {
			w.exec(`DELETE FROM payments.payment_ops WHERE order_id = $1 AND op = 'capture'`, w.orders["happy"])
			w.exec(`UPDATE payments.payments SET status = 'authorized' WHERE order_id = $1`, w.orders["happy"])
		}},
		{"cancelled-order", "order voided", func(w *world) {
			w.exec(`DELETE FROM payments.payment_ops WHERE order_id = $1 AND op = 'void'`, w.orders["voided"])
			w.exec(`UPDATE payments.payments SET status = 'authorized' WHERE order_id = $1`, w.orders["voided"])
		}},
		{"payment-ops", "order returned", func(w *world) {
			w.exec(`ALTER TABLE payments.payment_ops DROP CONSTRAINT payment_ops_pkey`)
			w.exec(`INSERT INTO payments.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
				SELECT order_id, op, provider_id || '-again', idempotency_key, amount, 'again' FROM payments.payment_ops
				WHERE order_id = $1 AND op = 'refund'`, w.orders["returned"])
		}},
		{"inbox-once", "event e-1", func(w *world) {
			w.exec(`ALTER TABLE core.inbox DROP CONSTRAINT inbox_pkey`)
			for i := 0; i < 2; i++ {
				w.exec(`INSERT INTO core.inbox (consumer, event_id, event_type, stream_seq) VALUES ('inventory-events', 'e-1', 't', $1)`, i)
			}
		}},
		{"stream-once", "event dup-1", func(w *world) {
			// The same event relayed twice past the duplicate window.
			w.event("orders.placed", w.orders["happy"], "dup-1", "m-1")
			w.event("orders.placed", w.orders["happy"], "dup-1", "m-2")
		}},
		{"stream-orders", "order ghost", func(w *world) {
			w.orders["ghost"] = uuid.NewString()
			w.events(w.orders["ghost"], "payments.captured")
		}},
		{"stream-path", "order happy", func(w *world) {
			w.events(w.orders["happy"], "payments.refunded")
		}},
		{"stream-path", "order declined", func(w *world) {
			// A compensation missing: the reservation was never released.
			st, err := w.js.Stream(w.ctx, "EVENTS")
			if err != nil {
				w.t.Fatal(err)
			}
			msg, err := st.GetLastMsgForSubject(w.ctx, "evt.inventory.released."+w.orders["declined"])
			if err != nil {
				w.t.Fatal(err)
			}
			if err := st.DeleteMsg(w.ctx, msg.Sequence); err != nil {
				w.t.Fatal(err)
			}
		}},
		{"provider-ledger", "order happy", func(w *world) {
			// A second authorization at the provider under another key: a double charge.
			w.pay("/v1/authorizations", "retry-with-new-key", provider.AuthorizeRequest{
				OrderID: w.orders["happy"], CustomerID: "c-1", Amount: 2000, Currency: "EUR"}, http.StatusCreated)
		}},
		{"provider-ledger", "order voided", func(w *world) {
			// Tradewind believes it voided; the provider never heard of it.
			w.exec(`UPDATE payments.payment_ops SET provider_id = 'void_lost' WHERE order_id = $1 AND op = 'void'`, w.orders["voided"])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.check+"/"+strings.ReplaceAll(tc.subject, " ", "_"), func(t *testing.T) {
			w := newWorld(t, payURL, false)
			tc.breakIt(w)
			subject := tc.subject
			if kind, path, ok := strings.Cut(tc.subject, " "); ok && kind == "order" {
				if id, known := w.orders[path]; known {
					subject = "order " + id
				}
			}
			rep := w.check(ledger)
			found := false
			for _, v := range rep.Violations {
				t.Logf("%s", v)
				if v.Check == tc.check && v.Subject == subject {
					found = true
				}
			}
			if !found {
				t.Errorf("check %s found no violation for %s", tc.check, subject)
			}
			if rep.OK() {
				t.Error("report OK despite the broken state")
			}
		})
	}
}
