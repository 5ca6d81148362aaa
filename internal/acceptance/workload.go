// Package acceptance is the workload and the verdict of Tradewind's
// deployment-level tests — the saga with its roles split across
// processes, and the saga on a 3-node NATS cluster losing a node:
//
//   - Workload acts as the producer services do: it seeds a catalogue,
//     customers and stock with commands, then places orders whose path is
//     known in advance (happy, out of stock, unknown SKU, declined), all
//     through broker.Publish with retries, as a producer rides out a NATS
//     node failure;
//   - WaitQuiescent waits until every durable consumer has drained and the
//     outbox is empty, and Check then runs internal/checker's invariants
//     once, on a system at rest, with no settle window to hide behind.
//
// The subpackages hold the tests; each gets its own database
// (testenv.Main), since the checker judges a whole database against one
// EVENTS stream.
package acceptance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/schemas"
)

// Source is the CloudEvent source of everything the workload publishes.
const Source = "/acceptance"

// The catalogue a workload seeds.
const (
	plentySKUs  = 4
	plentyStock = 1_000_000 // no happy order ever runs out
	scarceStock = 2         // out-of-stock orders ask for scarceStock+1
	customers   = 8
	currency    = "EUR"
)

// Class is the path an order is built to take.
type Class int

// The classes, each with one expected outcome regardless of how many
// orders run at once: happy orders draw on plenty of stock, out-of-stock
// orders ask for more than a scarce SKU ever holds, unknown-SKU orders
// name a SKU nobody stocked, declined orders come from a customer whose id
// the provider simulator always declines.
const (
	Happy Class = iota
	OutOfStock
	UnknownSKU
	Declined
)

func (c Class) String() string {
	return [...]string{"happy", "out_of_stock", "unknown_sku", "declined"}[c]
}

// Outcome is an order's final status and cancel reason in orders.orders.
type Outcome struct{ Status, Reason string }

// Want is the outcome an order of class c must reach.
func (c Class) Want() Outcome {
	switch c {
	case OutOfStock:
		return Outcome{events.StatusCancelled, events.CancelOutOfStock}
	case UnknownSKU:
		return Outcome{events.StatusCancelled, events.CancelUnknownSKU}
	case Declined:
		return Outcome{events.StatusCancelled, events.CancelPaymentDeclined}
	default:
		return Outcome{events.StatusConfirmed, ""}
	}
}

// Mix is the order of classes PlaceMix cycles through: mostly happy
// orders, every failure path in every cycle.
var Mix = []Class{Happy, Happy, Happy, OutOfStock, Happy, Declined, Happy, UnknownSKU, Happy, Happy}

// Workload is one run's producer. Every id it makes carries the run
// name, so runs against one database never share SKUs or customers.
type Workload struct {
	js   jetstream.JetStream
	pool *pgxpool.Pool
	run  string

	skus      []string
	scarce    string
	customers []string
	decliner  string

	mu     sync.Mutex
	orders map[string]Class
}

// NewWorkload builds the workload of run (a short token: it becomes part
// of SKUs and ids, which are NATS subject tokens).
func NewWorkload(run string, js jetstream.JetStream, pool *pgxpool.Pool) (*Workload, error) {
	if js == nil || pool == nil {
		return nil, errors.New("acceptance: JetStream and a PostgreSQL pool are required")
	}
	if run == "" {
		return nil, errors.New("acceptance: a run name is required")
	}
	w := &Workload{js: js, pool: pool, run: run, orders: map[string]Class{},
		scarce: run + "-scarce", decliner: run + "-decline-1"}
	for i := range plentySKUs {
		w.skus = append(w.skus, fmt.Sprintf("%s-sku-%d", run, i))
	}
	for i := range customers {
		w.customers = append(w.customers, fmt.Sprintf("%s-c-%d", run, i))
	}
	return w, nil
}

// Seed publishes products, customers and restocks, then waits until
// inventory has applied every restock and orders every customer: an
// order placed afterwards never overtakes the stock it needs (the
// commands travel on different consumers).
func (w *Workload) Seed(ctx context.Context) error {
	type command struct {
		typ  string
		data any
	}
	var cmds []command
	for i, sku := range append([]string{w.scarce}, w.skus...) {
		cmds = append(cmds, command{events.UpsertProductV1, events.Product{SKU: sku, Name: "Product " + sku,
			Price: int64(i+1) * 100, Currency: currency}})
	}
	for _, id := range append([]string{w.decliner}, w.customers...) {
		cmds = append(cmds, command{events.UpsertCustomerV1, events.Customer{CustomerID: id,
			Email: id + "@acceptance.tradewind.test", Name: "Customer " + id, Country: "DE"}})
	}
	var restocks []string
	for _, sku := range w.skus {
		cmds = append(cmds, command{events.RestockV1, events.Restock{SKU: sku, Quantity: plentyStock}})
	}
	cmds = append(cmds, command{events.RestockV1, events.Restock{SKU: w.scarce, Quantity: scarceStock}})
	for _, c := range cmds {
		e, err := w.publish(ctx, c.typ, c.data)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if c.typ == events.RestockV1 {
			restocks = append(restocks, e.ID())
		}
	}
	customerIDs := append([]string{w.decliner}, w.customers...)
	return poll(ctx, "seed applied", func(ctx context.Context) (bool, error) {
		var applied, known int
		err := w.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM inventory.restocks WHERE event_id = ANY($1)),
			(SELECT count(*) FROM orders.customers WHERE customer_id = ANY($2))`, restocks, customerIDs).Scan(&applied, &known)
		return err == nil && applied == len(restocks) && known == len(customerIDs), err
	})
}

// Place places one order of class c and returns its id. The order counts
// as placed once JetStream acknowledged the command.
func (w *Workload) Place(ctx context.Context, c Class) (string, error) {
	id := uuid.NewString()
	w.mu.Lock()
	n := len(w.orders)
	w.mu.Unlock()
	sku, qty, customer := w.skus[n%len(w.skus)], int64(n%3+1), w.customers[n%len(w.customers)]
	switch c {
	case OutOfStock:
		sku, qty = w.scarce, scarceStock+1
	case UnknownSKU:
		sku = w.run + "-never-stocked"
	case Declined:
		customer = w.decliner
	}
	// Unit prices are whole hundreds: no total ends in the provider's
	// decline suffix (51) by accident.
	cmd := events.PlaceOrder{OrderID: id, CustomerID: customer, Currency: currency,
		Lines: []events.OrderLine{{SKU: sku, Quantity: qty, UnitPrice: int64(n%9+1) * 100}}}
	if _, err := w.publish(ctx, events.PlaceOrderV1, cmd); err != nil {
		return "", fmt.Errorf("place %s order: %w", c, err)
	}
	w.mu.Lock()
	w.orders[id] = c
	w.mu.Unlock()
	return id, nil
}

// PlaceMix places n orders cycling through Mix, with up to concurrency
// publishes in flight; it stops at the first error.
func (w *Workload) PlaceMix(ctx context.Context, n, concurrency int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(1, concurrency))
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := w.Place(ctx, Mix[i%len(Mix)]); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// Placed counts the orders placed, by class.
func (w *Workload) Placed() map[Class]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[Class]int{}
	for _, c := range w.orders {
		out[c]++
	}
	return out
}

// WaitTerminal waits until every placed order is confirmed or cancelled.
func (w *Workload) WaitTerminal(ctx context.Context) error {
	ids := w.IDs()
	return poll(ctx, fmt.Sprintf("%d orders terminal", len(ids)), func(ctx context.Context) (bool, error) {
		var done int
		err := w.pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE order_id = ANY($1::uuid[]) AND status <> 'pending'`, ids).Scan(&done)
		return err == nil && done == len(ids), err
	})
}

// Mismatches lists every placed order whose outcome is not its class's,
// as "<id> (<class>): <status>/<reason>, want <status>/<reason>".
func (w *Workload) Mismatches(ctx context.Context) ([]string, error) {
	w.mu.Lock()
	want := make(map[string]Class, len(w.orders))
	for id, c := range w.orders {
		want[id] = c
	}
	w.mu.Unlock()
	rows, err := w.pool.Query(ctx, `SELECT order_id::text, status, coalesce(cancel_reason, '') FROM orders.orders WHERE order_id = ANY($1::uuid[])`, w.IDs())
	if err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		var got Outcome
		if err := rows.Scan(&id, &got.Status, &got.Reason); err != nil {
			return nil, fmt.Errorf("read outcomes: %w", err)
		}
		c := want[id]
		delete(want, id)
		if got != c.Want() {
			out = append(out, fmt.Sprintf("%s (%s): %s/%s, want %s/%s", id, c, got.Status, got.Reason, c.Want().Status, c.Want().Reason))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	for id, c := range want {
		out = append(out, fmt.Sprintf("%s (%s): no order row", id, c))
	}
	return out, nil
}

// JS is the JetStream context the workload publishes through.
func (w *Workload) JS() jetstream.JetStream { return w.js }

// Pool is the database the workload reads outcomes from.
func (w *Workload) Pool() *pgxpool.Pool { return w.pool }

// IDs are the ids of the orders placed so far.
func (w *Workload) IDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.orders))
	for id := range w.orders {
		ids = append(ids, id)
	}
	return ids
}

// publish builds and validates a command, then publishes it until
// JetStream acknowledges it or ctx ends. Every attempt sends the same
// event (same Nats-Msg-Id), so an attempt that was stored although its
// acknowledgement was lost (a node stopping mid-publish) is dropped as a
// duplicate by the broker.
func (w *Workload) publish(ctx context.Context, typ string, data any) (*event.Event, error) {
	e, err := events.New(typ, "", data, events.WithSource(Source))
	if err != nil {
		return nil, err
	}
	if err := schemas.ValidateEvent(e); err != nil {
		return nil, err
	}
	backoff := retry.Backoff{Base: 50 * time.Millisecond, Max: time.Second}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := broker.Publish(actx, w.js, e)
		cancel()
		if err == nil {
			return e, nil
		}
		if !retry.Sleep(ctx, backoff.Delay(attempt)) {
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		}
	}
}

// poll runs cond every 50 ms until it holds or ctx ends; the error names
// what was awaited and cond's last error.
func poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if !retry.Sleep(ctx, 50*time.Millisecond) {
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}
