package outbox

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRelayCrashAfterPublishPublishesOnceAfterRestart(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)

	order := uuid.NewString()
	var evs []*event.Event
	for i := 0; i < 25; i++ {
		e, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Add(ctx, tx, evs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// The first relay publishes, then dies before deleting the rows.
	crashing, err := NewRelay(RelayConfig{}, pool, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("killed after publish")
	crashing.afterPublish = func() error { return crash }
	if _, err := crashing.Drain(ctx); !errors.Is(err, crash) {
		t.Fatalf("drain: %v, want the crash", err)
	}
	if n := outboxRows(t, ctx, pool, order); n != 25 {
		t.Fatalf("rows after crash = %d, want 25 (still pending)", n)
	}
	if n := subjectCount(t, js, "evt.orders.placed."+order); n != 25 {
		t.Fatalf("stream after crash = %d, want 25", n)
	}

	// A restarted relay republishes them: the broker drops the duplicates.
	restarted, err := NewRelay(RelayConfig{}, pool, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := restarted.Drain(ctx); err != nil || n != 25 {
		t.Fatalf("drain after restart: n=%d err=%v", n, err)
	}
	if n := outboxRows(t, ctx, pool, order); n != 0 {
		t.Errorf("rows after restart = %d, want 0", n)
	}
	if n := subjectCount(t, js, "evt.orders.placed."+order); n != 25 {
		t.Errorf("stream after restart = %d, want exactly 25", n)
	}
	// Order is kept: stream sequence follows outbox order.
	st, _ := js.Stream(ctx, broker.StreamEvents)
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"evt.orders.placed." + order}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		m, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Headers().Get("ce-id"); got != evs[i].ID() {
			t.Fatalf("message %d is %s, want %s", i, got, evs[i].ID())
		}
	}
}

func TestOnlyOneRelayPublishesAtATime(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(relayLockKey)); err != nil {
		t.Fatal(err)
	}
	r, _ := NewRelay(RelayConfig{}, pool, js, nil)
	if n, err := r.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("drain while another relay is active: n=%d err=%v, want 0, nil", n, err)
	}
}

func outboxRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, order string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM core.outbox WHERE subject = $1`, "evt.orders.placed."+order).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func subjectCount(t *testing.T, js jetstream.JetStream, subject string) int {
	t.Helper()
	st, err := js.Stream(context.Background(), broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}
