package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/notifier"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The notifier runs as internal/app wires it: Idempotent, with no inbox
// rows, so a redelivered event is made a no-op by the notifier itself.
func TestOrderEventBecomesOneInboxEntryAndOneMessage(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	n := notifier.New()
	r, err := runner.New(runner.Config{Name: "notifier-test", Stream: broker.StreamEvents, FilterSubjects: n.Subjects(), Trusted: true, Idempotent: true}, js, pool, n)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := outbox.NewRelay(outbox.RelayConfig{Sweep: 50 * time.Millisecond}, pool, js, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(rctx) }()
	go func() { defer wg.Done(); _ = relay.Run(rctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	customer, order := "c-"+uuid.NewString()[:8], uuid.NewString()
	ev, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{
		OrderID: order, CustomerID: customer, Currency: "EUR", Total: 2500,
		Lines:    []events.OrderLine{{SKU: "SKU-1", Quantity: 2, UnitPrice: 1250}},
		PlacedAt: time.Now().UTC().Format(time.RFC3339Nano), Deadline: time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Published twice under two message ids, so that JetStream keeps both,
	// the second once the first is handled: a redelivery in a later batch
	// makes no second notification.
	subject, err := events.NATSSubject(ev)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := cenats.NewMsg(subject, ev)
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s/%d", ev.ID(), i))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "copy handled", func() bool {
			c, err := js.Consumer(ctx, broker.StreamEvents, "notifier-test")
			if err != nil {
				return false
			}
			ci, err := c.Info(ctx)
			return err == nil && ci.AckFloor.Stream >= uint64(i+1) && ci.NumAckPending == 0
		})
	}
	if st := r.Stats(); st.Applied.Load() != 2 || st.Retried.Load() != 0 || st.DeadLettered.Load() != 0 {
		t.Fatalf("runner: %d applied, %d retried, %d dead-lettered; want both copies applied at once",
			st.Applied.Load(), st.Retried.Load(), st.DeadLettered.Load())
	}
	var k int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.notifications WHERE user_id = $1`, customer).Scan(&k); err != nil || k != 1 {
		t.Fatalf("%d notifications (%v), want 1", k, err)
	}
	var seq int64
	var kind, title, body, orderID string
	err = pool.QueryRow(ctx, `SELECT seq, kind, title, body, order_id FROM public.notifications WHERE user_id = $1`, customer).
		Scan(&seq, &kind, &title, &body, &orderID)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1 || kind != "order.placed" || orderID != order || title == "" || body == "" {
		t.Fatalf("entry: seq %d kind %q order %q title %q body %q", seq, kind, orderID, title, body)
	}
	st, err := js.Stream(ctx, broker.StreamNotifications)
	if err != nil {
		t.Fatal(err)
	}
	// Published once, on the user's channel, naming the order in its
	// header (the WebSocket server derives the order and ops channels).
	testenv.Eventually(t, 10*time.Second, "one notification message", func() bool {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("ntf.>"))
		return err == nil && info.State.Subjects["ntf.user."+customer] == 1
	})
	m, err := st.GetLastMsgForSubject(ctx, "ntf.user."+customer)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(events.HeaderOrder); got != order {
		t.Fatalf("%s header %q, want the order %s", events.HeaderOrder, got, order)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "ntf.order."+order); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("a copy on the order's subject: %v", err)
	}
}

func TestSeqIsGapFreePerUserUnderConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	users := []string{"u-" + uuid.NewString()[:8], "u-" + uuid.NewString()[:8]}
	const writers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				u := users[(w+i)%len(users)]
				cause, _ := events.New(events.OrderPlacedV1, uuid.NewString(), map[string]any{})
				tx, err := pool.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				err = notifier.Append(ctx, tx, cause, notifier.Message{UserID: u, Kind: "order.placed", Title: "t"})
				if err == nil && i%5 == 0 {
					err = tx.Rollback(ctx) // an aborted handler leaves no hole
				} else if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range users {
		var n, maxSeq int64
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM public.notifications WHERE user_id = $1`, u).Scan(&n, &maxSeq); err != nil {
			t.Fatal(err)
		}
		if n == 0 || n != maxSeq {
			t.Fatalf("user %s: %d entries, max seq %d: a gap or a repeat", u, n, maxSeq)
		}
	}
}

// TestABatchNumbersEachUsersNotificationsInOrder: one HandleBatch call for
// interleaved users gives each user consecutive seqs in event order, skips
// an event already notified, and writes three outbox rows per order event.
func TestABatchNumbersEachUsersNotificationsInOrder(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	n := notifier.New()
	users := []string{"b-" + uuid.NewString()[:8], "a-" + uuid.NewString()[:8], "c-" + uuid.NewString()[:8]}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var evs []*event.Event
	for i := range 9 {
		order := uuid.NewString()
		ev, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{
			OrderID: order, CustomerID: users[i%3], Currency: "EUR", Total: int64(100 + i),
			Lines:    []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: int64(100 + i)}},
			PlacedAt: now, Deadline: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	apply := func(evs []*event.Event) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		msgs := make([]runner.Msg, len(evs))
		for i, ev := range evs {
			msgs[i] = runner.Msg{Ctx: ctx, Event: ev}
		}
		out, err := n.HandleBatch(ctx, tx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(evs) {
			t.Fatalf("%d results for %d events", len(out), len(evs))
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Its outbox rows are this test's alone: no relay of another test in
	// this package's database may publish them (it counts its stream).
	t.Cleanup(func() {
		_, _ = pool.Exec(ctx, `DELETE FROM core.outbox WHERE subject LIKE 'ntf.%' AND convert_from(body, 'UTF8') LIKE ANY($1)`,
			[]string{"%" + users[0] + "%", "%" + users[1] + "%", "%" + users[2] + "%"})
	})
	apply(evs[:1])
	apply(evs) // the first is already notified

	for u, user := range users {
		rows, err := pool.Query(ctx, `SELECT seq, body FROM public.notifications WHERE user_id = $1 ORDER BY seq`, user)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		var bodies []string
		for rows.Next() {
			var seq int64
			var body string
			if err := rows.Scan(&seq, &body); err != nil {
				t.Fatal(err)
			}
			seqs, bodies = append(seqs, seq), append(bodies, body)
		}
		if fmt.Sprint(seqs) != "[1 2 3]" {
			t.Errorf("user %d seqs %v, want [1 2 3]", u, seqs)
		}
		for i, b := range bodies { // event order: totals 100+u, 103+u, 106+u
			if want := fmt.Sprintf("1.%02d EUR", 100+u+3*i-100); !strings.Contains(b, want) {
				t.Errorf("user %d seq %d body %q, want %s", u, i+1, b, want)
			}
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM core.outbox WHERE subject LIKE 'ntf.%' AND convert_from(body, 'UTF8') LIKE ANY($1)`,
		[]string{"%" + users[0] + "%", "%" + users[1] + "%", "%" + users[2] + "%"}).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 9 {
		t.Errorf("outbox rows = %d, want 9 (one per notification, on the user's channel)", rows)
	}
}
