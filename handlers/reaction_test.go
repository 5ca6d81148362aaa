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
