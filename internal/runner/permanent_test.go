package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// dataException fails with a PostgreSQL data exception (SQLSTATE 22P02)
// for one customer: the message's own data cannot be stored.
type dataException struct {
	next     runner.Handler
	customer string
}

func (d dataException) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PlaceOrder
	_ = events.DecodeData(ev, &in)
	if in.CustomerID == d.customer {
		var n int
		if err := tx.QueryRow(ctx, `SELECT $1::text::int`, in.CustomerID).Scan(&n); err != nil {
			return nil, fmt.Errorf("store order of %s: %w", in.CustomerID, err)
		}
	}
	return d.next.Handle(ctx, tx, ev)
}

// TestDataExceptionsAndControlCharactersAreDeadLetteredAtOnce: a NUL in a
// SKU breaks the schema, and a PostgreSQL data exception (class 22) is
// permanent; both go to the DLQ after one attempt, with the reason, while
// the rest commits.
func TestDataExceptionsAndControlCharactersAreDeadLetteredAtOnce(t *testing.T) {
	s := newSystem(t)
	prefix := "class22"
	good := placeOrder(t, prefix+"-good", 1)
	bad := placeOrder(t, prefix+"-bad", 1)
	nul, err := events.New(events.PlaceOrderV1, "", json.RawMessage(`{"customer_id":"`+prefix+`-nul","currency":"EUR","lines":[{"sku":"SKU-1\u0000","quantity":1,"unit_price":1}]}`), events.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*event.Event{bad, nul, good} {
		publishRaw(t, s.js, e, e.ID())
	}
	cfg := ordersConsumer("class22-orders")
	cfg.MaxDeliver = 5
	// The good message is applied by a handler that emits nothing: this
	// test leaves no outbox rows for the package's other tests' relays.
	noEvents := runner.HandlerFunc(func(context.Context, pgx.Tx, *event.Event) ([]*event.Event, error) { return nil, nil })
	r, _ := s.start(cfg, dataException{next: noEvents, customer: prefix + "-bad"})
	testenv.Eventually(t, 15*time.Second, "two dead letters and one order", func() bool {
		return r.Stats().DeadLettered.Load() == 2 && r.Stats().Applied.Load() >= 1
	})
	if n := r.Stats().Retried.Load(); n != 0 {
		t.Errorf("%d retries, want none: data exceptions are permanent", n)
	}
	cons, err := s.js.CreateOrUpdateConsumer(context.Background(), broker.StreamDLQ, jetstream.ConsumerConfig{
		FilterSubject: runner.DeadLetterSubject("class22-orders", ">"),
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for m := range batch.Messages() {
		if a := m.Headers().Get(runner.HdrDLQAttempts); a != "1" {
			t.Errorf("%s dead-lettered after %s attempts, want 1", m.Headers().Get("ce-id"), a)
		}
		reasons[m.Headers().Get("ce-id")] = m.Headers().Get(runner.HdrDLQReason)
	}
	if r := reasons[bad.ID()]; !strings.Contains(r, "22P02") {
		t.Errorf("data exception reason %q does not name the SQLSTATE", r)
	}
	if r := reasons[nul.ID()]; !strings.Contains(r, "/lines/0/sku") {
		t.Errorf("NUL reason %q does not name the field", r)
	}
}
