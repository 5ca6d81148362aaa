package notifier_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/notifier"
	"github.com/tradewind/tradewind/notifier/prefs"
)

// TestAMutedKindIsNeverMade: user A mutes order.confirmed. In one batch
// (and then in a second one) A's confirmations make no inbox row, no seq
// and no outbox row, while A's other notifications are numbered 1, 2, …
// without a gap and user B, who muted nothing, gets every kind. Unmuting
// brings the kind back with the next seq.
func TestAMutedKindIsNeverMade(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	store := prefs.Store{Pool: pool}
	n := notifier.New()
	a, b := "ma-"+uuid.NewString()[:8], "mb-"+uuid.NewString()[:8]
	if got, err := store.SetMuted(ctx, a, []string{events.KindOrderConfirmed, events.KindOrderConfirmed}); err != nil || fmt.Sprint(got) != "[order.confirmed]" {
		t.Fatalf("set muted: %v %v", got, err)
	}
	if got, err := store.Muted(ctx, b); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("B's preferences %v (%v), want none", got, err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(ctx, `DELETE FROM core.outbox WHERE subject LIKE 'ntf.%' AND convert_from(body, 'UTF8') LIKE ANY($1)`,
			[]string{"%" + a + "%", "%" + b + "%"})
	})
	now := time.Now().UTC().Format(time.RFC3339Nano)
	placed := func(user string) *event.Event {
		t.Helper()
		order := uuid.NewString()
		ev, err := events.New(events.OrderPlacedV1, order, events.OrderPlaced{
			OrderID: order, CustomerID: user, Currency: "EUR", Total: 100,
			Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}, PlacedAt: now, Deadline: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	confirmed := func(user string) *event.Event {
		t.Helper()
		order := uuid.NewString()
		ev, err := events.New(events.OrderConfirmedV1, order, events.OrderConfirmed{
			OrderID: order, CustomerID: user, Currency: "EUR", Total: 100, AuthorizationID: "auth-1", ConfirmedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	apply := func(evs ...*event.Event) {
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
		if _, err := n.HandleBatch(ctx, tx, msgs); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	inbox := func(user string) string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT seq, kind FROM public.notifications WHERE user_id = $1 ORDER BY seq`, user)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var seq int64
			var kind string
			if err := rows.Scan(&seq, &kind); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d:%s", seq, kind))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out)
	}
	outbox := func(user, kind string) int {
		t.Helper()
		var k int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM core.outbox WHERE subject = $1 AND convert_from(body, 'UTF8') LIKE $2`,
			"ntf."+events.UserChannel(user), `%"kind":"`+kind+`"%`).Scan(&k)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	ca := confirmed(a)
	apply(placed(a), ca, confirmed(b), placed(b), confirmed(a))
	apply(ca, placed(a)) // a redelivered muted event stays unmade
	if got, want := inbox(a), "[1:order.placed 2:order.placed]"; got != want {
		t.Errorf("A's inbox %s, want %s (no confirmation, no gap)", got, want)
	}
	if got, want := inbox(b), "[1:order.confirmed 2:order.placed]"; got != want {
		t.Errorf("B's inbox %s, want %s", got, want)
	}
	if k := outbox(a, events.KindOrderConfirmed); k != 0 {
		t.Errorf("%d outbox rows of A's muted confirmations, want 0", k)
	}
	if k := outbox(a, events.KindOrderPlaced); k != 2 {
		t.Errorf("%d outbox rows of A's placed orders, want 2", k)
	}
	if k := outbox(b, events.KindOrderConfirmed); k != 1 {
		t.Errorf("%d outbox rows of B's confirmation, want 1", k)
	}
	var last int64
	if err := pool.QueryRow(ctx, `SELECT last_seq FROM public.notification_counters WHERE user_id = $1`, a).Scan(&last); err != nil || last != 2 {
		t.Errorf("A's counter at %d (%v), want 2: a muted notification took a seq", last, err)
	}

	if _, err := store.SetMuted(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	apply(confirmed(a))
	if got, want := inbox(a), "[1:order.placed 2:order.placed 3:order.confirmed]"; got != want {
		t.Errorf("after unmuting, A's inbox %s, want %s", got, want)
	}
}
