package tracing

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/events"
)

// StartMessage starts the span of handling one message by consumer: a
// consumer span named "process <type>", child of the message's
// traceparent extension (a new trace when it has none). End it with End.
func StartMessage(ctx context.Context, tracer trace.Tracer, consumer, subject string, ev *event.Event) (context.Context, trace.Span) {
	ctx = FromTraceparent(ctx, events.StringExt(ev, events.ExtTraceparent))
	return tracer.Start(ctx, "process "+ev.Type(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.consumer.group.name", consumer),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", ev.ID()),
			attribute.String("cloudevents.event_type", ev.Type()),
			attribute.String("cloudevents.event_subject", ev.Subject()),
			attribute.String("tradewind.correlation_id", events.StringExt(ev, events.ExtCorrelationID)),
		))
}

// End ends a span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Stamp makes the span in ctx the parent of the events a message emitted:
// every event whose traceparent is empty or inherited from cause (as
// events.CausedBy copies it) gets the traceparent of the span in ctx. An
// event that set a different traceparent itself keeps it. Without a
// valid span in ctx nothing changes.
func Stamp(ctx context.Context, cause *event.Event, out []*event.Event) {
	tp := Traceparent(ctx)
	if tp == "" {
		return
	}
	inherited := ""
	if cause != nil {
		inherited = events.StringExt(cause, events.ExtTraceparent)
	}
	for _, e := range out {
		if cur := events.StringExt(e, events.ExtTraceparent); cur == "" || cur == inherited {
			e.SetExtension(events.ExtTraceparent, tp)
		}
	}
}

// StartBatch starts the span of a step that handles many messages at once
// (a projection applying a batch in one transaction): a root consumer span
// named name, linked to the span of each traceparent (empty and malformed
// ones are skipped), since one span cannot have many parents.
func StartBatch(ctx context.Context, tracer trace.Tracer, name string, traceparents []string) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(traceparents))
	for _, tp := range traceparents {
		if sc := trace.SpanContextFromContext(FromTraceparent(context.Background(), tp)); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return tracer.Start(ctx, name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(traceparents))))
}
