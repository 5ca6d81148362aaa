package runner

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/internal/tracing"
)

// WithTracer makes the runner trace handlers: each message's handler runs
// in a consumer span that is a child of the message's traceparent, and
// the events it emits carry that span's traceparent, so the next hop is
// the span's child. Without it (tracing off) emitted events inherit the
// cause's traceparent unchanged. A message re-run on the savepoint path
// after a failure in its batch gets a second span.
func WithTracer(t trace.Tracer) Option { return func(r *Runner) { r.tracer = t } }

// handle runs the handler for one message, in its span when tracing, and
// links what it emitted to the message.
func (r *Runner) handle(ctx context.Context, tx pgx.Tx, it *item) ([]*event.Event, error) {
	ctx = r.handlerContext(ctx, it)
	if r.tracer == nil {
		out, err := r.h.Handle(ctx, tx, it.ev)
		if err != nil {
			return nil, err
		}
		it.emitted = r.caused(ctx, it, out)
		return it.emitted, nil
	}
	ctx, span := tracing.StartMessage(ctx, r.tracer, r.cfg.Name, it.msg.Subject(), it.ev)
	out, err := r.h.Handle(ctx, tx, it.ev)
	tracing.End(span, err)
	if err != nil {
		return nil, err
	}
	it.emitted = r.caused(ctx, it, out)
	return it.emitted, nil
}
