package projections_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/tracing"
	"github.com/tradewind/tradewind/projections"
)

// TestProjectionBatchesAreTracedWithLinksToTheirEvents: a traced worker
// records one span per applied batch, linked to each event's trace.
func TestProjectionBatchesAreTracedWithLinksToTheirEvents(t *testing.T) {
	e := newEnv(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	o := uuidFor(42)
	ev, err := events.New(events.OrderPlacedV1, o, events.OrderPlaced{
		OrderID: o, CustomerID: "c-trace", Currency: "EUR", Total: 100,
		Lines:    []events.OrderLine{line("SKU-T", 1, 100)},
		PlacedAt: "2026-03-01T09:00:00Z", Deadline: "2026-03-01T09:00:30Z",
	}, events.WithTraceparent("00-"+traceID+"-00f067aa0ba902b7-01"))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := broker.Publish(e.ctx, e.js, ev)
	if err != nil {
		t.Fatal(err)
	}

	w, err := projector.NewGroup([]projector.Projection{projections.Orders{}, projections.Inventory{}}, e.js, e.pool,
		projector.GroupConfig{Tracer: tracing.NewProvider(tp, nil).Tracer()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.waitFor(projections.Orders{}, ack.Sequence)

	deadline := time.Now().Add(5 * time.Second)
	for len(spans.Ended()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range spans.Ended() {
		if s.Name() != "project orders" {
			continue
		}
		for _, l := range s.Links() {
			if l.SpanContext.TraceID().String() == traceID {
				return
			}
		}
	}
	t.Fatalf("no \"project orders\" span linked to trace %s among %d spans", traceID, len(spans.Ended()))
}
