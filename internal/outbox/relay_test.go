package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
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
	evs := placedEvents(t, order, 25)
	commit(t, ctx, pool, func(tx pgx.Tx) error { return Add(ctx, tx, evs...) })

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

// commit runs fill in a transaction on pool and commits it, as a writer
// that commits and then dies before publishing would.
func commit(t *testing.T, ctx context.Context, pool *pgxpool.Pool, fill func(tx pgx.Tx) error) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fill(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
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

// placedEvents builds n orders.placed events of one order.
func placedEvents(t *testing.T, order string, n int) []*event.Event {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var evs []*event.Event
	for range n {
		e, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{
			OrderID: order, CustomerID: "c-1", Currency: "EUR", Total: 250,
			Lines:    []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 250}},
			PlacedAt: now, Deadline: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestCommitPublishesItsOwnRowsAndDeletesThem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	pub, err := NewPublisher(PublisherConfig{}, pool, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = pub.Run(ctx) }()

	order := uuid.NewString()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	wctx, written := Collect(ctx)
	if err := Add(wctx, tx, placedEvents(t, order, 10)...); err != nil {
		t.Fatal(err)
	}
	if written.Len() != 10 {
		t.Fatalf("recorded %d rows, want 10", written.Len())
	}
	// Published straight after commit, with no relay running.
	if err := pub.Commit(ctx, tx, written); err != nil {
		t.Fatal(err)
	}
	if n := subjectCount(t, js, "evt.orders.placed."+order); n != 10 {
		t.Fatalf("stream after commit = %d, want 10", n)
	}
	testenv.Eventually(t, 10*time.Second, "published rows deleted", func() bool {
		return outboxRows(t, ctx, pool, order) == 0
	})
}

func TestRowsOfAWriterThatDiedAfterCommitAreSweptOnce(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	order := uuid.NewString()
	// A writer commits and dies before publishing (a plain commit).
	commit(t, ctx, pool, func(tx pgx.Tx) error { return Add(ctx, tx, placedEvents(t, order, 5)...) })
	r, _ := NewRelay(RelayConfig{MinAge: time.Hour}, pool, js, nil)
	if n, err := r.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("drain of young rows: n=%d err=%v, want 0 (left to their writer)", n, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE core.outbox SET created_at = now() - interval '2 hours' WHERE subject = $1`,
		"evt.orders.placed."+order); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("drain of old rows: n=%d err=%v, want 5", n, err)
	}
	if n := subjectCount(t, js, "evt.orders.placed."+order); n != 5 {
		t.Errorf("stream = %d, want 5", n)
	}
}

func TestAddRefusesAnEventThatDoesNotMatchItsSchema(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	e, err := events.New(events.OrderPlacedV1, "not-a-uuid", map[string]any{"order_id": 7})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := Add(ctx, tx, e); err == nil {
		t.Fatal("Add accepted an event that does not match its schema")
	}
}

// The relay publishes a row's headers as its writer encoded them, whether
// the row holds the header block or (written before migration 01410) the
// JSON object; keys keep their case.
func TestRelayPublishesHeadersOfBothRowFormats(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	order := uuid.NewString()
	evs := placedEvents(t, order, 2)
	msgs := make([]Message, len(evs))
	for i, e := range evs {
		m, err := Encode(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	legacy, err := json.Marshal(msgs[1].Header)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, ctx, pool, func(tx pgx.Tx) error {
		if err := AddMessages(ctx, tx, msgs[0]); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO core.outbox (event_id, subject, headers, body) VALUES ($1, $2, $3::jsonb, $4)`,
			msgs[1].EventID, msgs[1].Subject, string(legacy), msgs[1].Body)
		return err
	})
	r, _ := NewRelay(RelayConfig{MinAge: time.Nanosecond}, pool, js, nil)
	if n, err := r.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("drain: n=%d err=%v, want 2", n, err)
	}
	st, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"evt.orders.placed." + order}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range msgs {
		got, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		h := got.Headers()
		for k, vs := range want.Header {
			if !slices.Equal(h[k], vs) {
				t.Errorf("message %d: header %q = %q, want %q", i, k, h[k], vs)
			}
		}
		if h.Get(nats.MsgIdHdr) != want.EventID || string(got.Data()) != string(want.Body) {
			t.Errorf("message %d: id %q body %q, want %q %q", i, h.Get(nats.MsgIdHdr), got.Data(), want.EventID, want.Body)
		}
	}
}

func TestHeaderBlockIsWhatNATSDecodes(t *testing.T) {
	h := map[string][]string{
		"ce-id":          {"a1"},
		"Content-Type":   {"application/json"},
		"ce-multi":       {"one", "two"},
		"ce-newlines":    {"line\r\nbreak"},
		"ce-spaced":      {"  padded  "},
		"tradewind-KeyX": {"UPPER and lower"},
	}
	got, err := nats.DecodeHeadersMsg(headerBlock(h))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"ce-id": {"a1"}, "Content-Type": {"application/json"}, "ce-multi": {"one", "two"},
		"ce-newlines": {"line  break"}, "ce-spaced": {"padded"}, "tradewind-KeyX": {"UPPER and lower"},
	}
	if len(got) != len(want) {
		t.Errorf("decoded %d keys %v, want %d", len(got), got, len(want))
	}
	for k, vs := range want {
		if !slices.Equal(got[k], vs) {
			t.Errorf("%q = %q, want %q", k, got[k], vs)
		}
	}
}
