package handlers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
)

// emitter is a reactor that emits a fixed type, whatever it declares.
type emitter struct {
	declares []string
	emits    string
}

func (e emitter) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "test_step", Participant: handlers.Orders, Trigger: events.CancelOrderV1, Emits: e.declares}
}

func (e emitter) Handle(context.Context, pgx.Tx, *event.Event) ([]*event.Event, error) {
	ev, err := events.New(e.emits, "0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10", events.OrderCancelled{})
	return []*event.Event{ev}, err
}

func TestRouterRefusesAnEventTypeTheReactionDoesNotDeclare(t *testing.T) {
	t.Parallel()
	cmd, err := events.New(events.CancelOrderV1, "", events.CancelOrder{OrderID: "0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		declares []string
		wantErr  bool
	}{
		{"declared", []string{events.OrderCancelledV1}, false},
		{"undeclared", []string{events.OrderConfirmedV1}, true},
		{"declares nothing", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := handlers.NewRouter(emitter{declares: tc.declares, emits: events.OrderCancelledV1})
			if err != nil {
				t.Fatal(err)
			}
			// The reactor never touches the transaction: nil is enough.
			out, err := r.Handle(context.Background(), nil, cmd)
			if !tc.wantErr {
				if err != nil || len(out) != 1 {
					t.Fatalf("Handle = %d events, %v; want the declared event", len(out), err)
				}
				return
			}
			if !errors.Is(err, handlers.ErrUndeclaredEmit) || !runner.IsPermanent(err) || out != nil {
				t.Fatalf("Handle = %d events, %v; want a permanent ErrUndeclaredEmit and nothing emitted", len(out), err)
			}
		})
	}
}

// recorder records how the Router hands it messages: one call per group
// (set-based) or per message.
type recorder struct {
	trigger string
	calls   *[]string // "batch a,b" or "one a"
}

func (r recorder) Reaction() handlers.Reaction {
	return handlers.Reaction{Step: "rec_" + r.trigger, Participant: handlers.Orders, Trigger: r.trigger}
}

func (r recorder) Handle(_ context.Context, _ pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	*r.calls = append(*r.calls, "one "+ev.ID())
	return nil, nil
}

type batchRecorder struct{ recorder }

func (r batchRecorder) HandleBatch(_ context.Context, _ pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	ids := ""
	for i, m := range msgs {
		if i > 0 {
			ids += ","
		}
		ids += m.Event.ID()
	}
	*r.calls = append(*r.calls, "batch "+ids)
	return make([][]*event.Event, len(msgs)), nil
}

// TestRouterGroupsABatchByTypeKeepingEachAggregatesOrder: messages of a
// set-based type go in one call per type; a message whose aggregate had
// an earlier message of another type (and every later one of that
// aggregate) runs one by one after the groups, in stream order.
func TestRouterGroupsABatchByTypeKeepingEachAggregatesOrder(t *testing.T) {
	t.Parallel()
	var calls []string
	placed := batchRecorder{recorder{trigger: events.OrderPlacedV1, calls: &calls}}
	confirmed := batchRecorder{recorder{trigger: events.OrderConfirmedV1, calls: &calls}}
	cancelled := recorder{trigger: events.OrderCancelledV1, calls: &calls} // no set-based path
	r, err := handlers.NewRouter(placed, confirmed, cancelled)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id, typ, order string) runner.Msg {
		ev := event.New()
		ev.SetID(id)
		ev.SetType(typ)
		ev.SetSubject(order)
		return runner.Msg{Ctx: context.Background(), Event: &ev}
	}
	batch := []runner.Msg{
		msg("p1", events.OrderPlacedV1, "o1"),
		msg("p2", events.OrderPlacedV1, "o2"),
		msg("c1", events.OrderConfirmedV1, "o3"),
		msg("x2", events.OrderConfirmedV1, "o2"), // o2 had a placed: one by one
		msg("p3", events.OrderPlacedV1, "o3"),    // o3 had a confirmed: one by one
		msg("k4", events.OrderCancelledV1, "o4"), // no set-based path
		msg("p5", events.OrderPlacedV1, "o5"),
		msg("p2b", events.OrderPlacedV1, "o2"), // o2 runs one by one from x2 on
		msg("c6", events.OrderConfirmedV1, "o6"),
	}
	out, err := r.HandleBatch(context.Background(), nil, batch)
	if err != nil || len(out) != len(batch) {
		t.Fatalf("HandleBatch = %d results, %v", len(out), err)
	}
	want := []string{"batch p1,p2,p5", "batch c1,c6", "one x2", "one p3", "one k4", "one p2b"}
	if len(calls) != len(want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("calls %q, want %q", calls, want)
		}
	}
}
