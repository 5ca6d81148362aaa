package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/nats-io/nats.go"
	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/tracing"
)

// outboxTraceparent is the traceparent of the event the runner wrote to
// the outbox because of the message with id causeID ("" when none yet).
func (s *system) outboxTraceparent(causeID string) (string, bool) {
	s.t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT header FROM core.outbox`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			s.t.Fatal(err)
		}
		h, err := nats.DecodeHeadersMsg(raw)
		if err != nil {
			s.t.Fatal(err)
		}
		get := func(name string) string {
			for k, v := range h {
				if strings.EqualFold(k, "ce-"+name) && len(v) > 0 {
					return v[0]
				}
			}
			return ""
		}
		if get(events.ExtCausationID) == causeID {
			return get(events.ExtTraceparent), true
		}
	}
	return "", false
}

func TestHandlerSpanIsTheChildOfTheMessageAndTheParentOfItsEvents(t *testing.T) {
	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID   = "00f067aa0ba902b7"
		incoming = "00-" + traceID + "-" + spanID + "-01"
	)
	tests := []struct {
		name        string
		traceparent string // on the command
		traced      bool   // runner.WithTracer
	}{
		{"traced message with a traceparent", incoming, true},
		{"traced message without one starts a trace", "", true},
		{"tracing off passes the traceparent through", incoming, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSystem(t)
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			var opts []runner.Option
			if tt.traced {
				opts = append(opts, runner.WithTracer(tracing.NewProvider(tp, nil).Tracer()))
			}
			cmd := placeOrder(t, fmt.Sprintf("trace-%d", i), 1)
			events.WithTraceparent(tt.traceparent)(cmd)
			publishRaw(t, s.js, cmd, cmd.ID())
			r, _ := s.start(ordersConsumer("trace-orders"), mustPlaceOrder(t), opts...)
			testenv.Eventually(t, 10*time.Second, "the command applied", func() bool { return r.Stats().Applied.Load() == 1 })
			emitted, ok := s.outboxTraceparent(cmd.ID())
			if !ok {
				t.Fatal("no event in the outbox caused by the command")
			}

			ended := spans.Ended()
			if !tt.traced {
				if len(ended) != 0 {
					t.Fatalf("%d spans recorded with tracing off", len(ended))
				}
				if emitted != tt.traceparent {
					t.Fatalf("emitted traceparent %q, want the cause's %q", emitted, tt.traceparent)
				}
				return
			}
			if len(ended) != 1 {
				t.Fatalf("%d spans, want 1 for the one message", len(ended))
			}
			span := ended[0]
			sc := span.SpanContext()
			if span.SpanKind() != trace.SpanKindConsumer || span.Name() != "process "+events.PlaceOrderV1 {
				t.Errorf("span %q of kind %v, want a consumer span named after the type", span.Name(), span.SpanKind())
			}
			if tt.traceparent != "" {
				if p := span.Parent(); p.TraceID().String() != traceID || p.SpanID().String() != spanID || !p.IsRemote() {
					t.Errorf("span parent = %s/%s (remote %v), want the traceparent's %s/%s", p.TraceID(), p.SpanID(), p.IsRemote(), traceID, spanID)
				}
			} else if span.Parent().IsValid() {
				t.Errorf("span has parent %s without a traceparent, want a root span", span.Parent().SpanID())
			}
			want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
			if emitted != want {
				t.Errorf("emitted event's traceparent = %q, want the handler span's %q", emitted, want)
			}
		})
	}
}
