package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/dlq"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// buggy fails every message until fixed is set: the "deploy a fix" of the
// round trip.
type buggy struct {
	next  runner.Handler
	fixed atomic.Bool
}

func (b *buggy) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	if !b.fixed.Load() {
		return nil, errors.New("bug: nil pointer in pricing")
	}
	return b.next.Handle(ctx, tx, ev)
}

func run(t *testing.T, js jetstream.JetStream, name string, h runner.Handler) *runner.Runner {
	t.Helper()
	r, err := runner.New(runner.Config{
		Name: name, Stream: broker.StreamCommands, FilterSubjects: []string{"cmd.orders.place"},
		MaxDeliver: 2, Backoff: func(int) time.Duration { return 10 * time.Millisecond },
	}, js, testenv.Pool(t), h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestPoisonDeadLetterFixReplayProcessedOnce(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx := context.Background()
	customer := "dlq-" + uuid.NewString() // unique under -count=N

	place, err := orders.NewPlaceOrder(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	orders := &buggy{next: place}
	r := run(t, js, "dlq-orders", orders)
	// A second consumer of the same subject that handled the message
	// fine: the replay reaches it too, and its inbox must drop it.
	audit := run(t, js, "dlq-audit", runner.HandlerFunc(func(context.Context, pgx.Tx, *event.Event) ([]*event.Event, error) {
		return nil, nil
	}))

	cmd, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		CustomerID: customer, Currency: "EUR", Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 3, UnitPrice: 100}},
	}, events.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Publish(ctx, js, cmd); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "dead letter", func() bool { return r.Stats().DeadLettered.Load() == 1 })
	testenv.Eventually(t, 10*time.Second, "audit applied", func() bool { return audit.Stats().Applied.Load() == 1 })

	q, err := dlq.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	list, err := q.List(ctx, dlq.Filter{Consumer: "dlq-orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(list))
	}
	e := list[0]
	if e.EventID != cmd.ID() || e.Subject != "cmd.orders.place" || e.Stream != broker.StreamCommands ||
		e.Attempts != 2 || !strings.Contains(e.Reason, "nil pointer in pricing") {
		t.Errorf("entry %+v", e)
	}

	orders.fixed.Store(true) // the fix is deployed
	rep, err := q.Replay(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stream != broker.StreamCommands || rep.Duplicate {
		t.Errorf("replay landed %+v", rep)
	}
	testenv.Eventually(t, 10*time.Second, "replay applied", func() bool { return r.Stats().Applied.Load() == 1 })
	testenv.Eventually(t, 10*time.Second, "audit saw the replay", func() bool { return audit.Stats().Duplicates.Load() == 1 })

	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE customer_id = $1`, customer).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	if got := audit.Stats().Applied.Load(); got != 1 {
		t.Errorf("audit applied %d times, want 1 (the inbox drops the replay)", got)
	}
	if left, err := q.Count(ctx, dlq.Filter{}); err != nil || left != 0 {
		t.Errorf("DLQ holds %d after replay (err %v), want 0", left, err)
	}
	if _, err := q.Replay(ctx, e.ID); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("second replay of the same entry: %v, want ErrNotFound", err)
	}
}

// deadLetter writes a dead letter as the runner does.
func deadLetter(t *testing.T, js jetstream.JetStream, consumer string, i int) {
	t.Helper()
	m := nats.NewMsg(runner.DeadLetterSubject(consumer, "cmd.orders.place"))
	m.Header.Set("ce-id", fmt.Sprintf("%s-%d", consumer, i))
	m.Header.Set(runner.HdrDLQConsumer, consumer)
	m.Header.Set(runner.HdrDLQSubject, "cmd.orders.place")
	m.Header.Set(runner.HdrDLQAttempts, "5")
	m.Header.Set(runner.HdrDLQReason, "reason")
	m.Data = []byte(`{}`)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestFiltersAndPurge(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	ctx := context.Background()
	for i := range 3 {
		deadLetter(t, js, "alpha", i)
	}
	for i := range 2 {
		deadLetter(t, js, "beta", i)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "dlq.gamma.x", Data: []byte("foreign")}); err != nil {
		t.Fatal(err)
	}
	q, err := dlq.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    dlq.Filter
		want int
	}{
		{"all", dlq.Filter{}, 6},
		{"one consumer", dlq.Filter{Consumer: "alpha"}, 3},
		{"limit", dlq.Filter{Consumer: "alpha", Limit: 2}, 2},
		{"no such consumer", dlq.Filter{Consumer: "nobody"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("List = %d entries, want %d", len(got), tt.want)
			}
		})
	}
	foreign, err := q.List(ctx, dlq.Filter{Consumer: "gamma"})
	if err != nil || len(foreign) != 1 {
		t.Fatalf("foreign entry: %v %v", foreign, err)
	}
	if foreign[0].Consumer != "gamma" {
		t.Errorf("consumer of a header-less entry = %q, want it from the subject", foreign[0].Consumer)
	}
	if _, err := q.Replay(ctx, foreign[0].ID); !errors.Is(err, dlq.ErrNotDeadLetter) {
		t.Errorf("replay of a foreign entry: %v, want ErrNotDeadLetter", err)
	}

	n, err := q.Purge(ctx, dlq.Filter{Consumer: "alpha"})
	if err != nil || n != 3 {
		t.Fatalf("purge alpha = %d, %v; want 3", n, err)
	}
	if left, _ := q.Count(ctx, dlq.Filter{}); left != 3 {
		t.Errorf("after purging alpha %d left, want 3", left)
	}
	if n, err := q.Purge(ctx, dlq.Filter{}); err != nil || n != 3 {
		t.Errorf("purge all = %d, %v; want 3", n, err)
	}
}
