package runner

import (
	"context"
	"fmt"
	"time"

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
	ctx, span := tracing.StartMessage(ctx, r.tracer, r.cfg.Name, it.subject(), it.ev)
	out, err := r.h.Handle(ctx, tx, it.ev)
	tracing.End(span, err)
	if err != nil {
		return nil, err
	}
	it.emitted = r.caused(ctx, it, out)
	return it.emitted, nil
}

// handleAll runs the handler for the fresh messages of a batch: in one
// HandleBatch call when the handler has a set-based path, else one by one.
// Each message's handled time is its share of the whole.
func (r *Runner) handleAll(ctx context.Context, tx pgx.Tx, todo []*item) ([]*event.Event, error) {
	var out []*event.Event
	bh, ok := r.h.(BatchHandler)
	if !ok || len(todo) < 2 {
		for _, it := range todo {
			start := time.Now()
			emitted, err := r.handle(ctx, tx, it)
			it.handled = time.Since(start)
			if err != nil {
				return nil, err
			}
			out = append(out, emitted...)
		}
		return out, nil
	}
	start := time.Now()
	msgs := make([]Msg, len(todo))
	spans := make([]trace.Span, len(todo))
	for i, it := range todo {
		msgs[i] = Msg{Ctx: r.handlerContext(ctx, it), Event: it.ev}
		if r.tracer != nil {
			msgs[i].Ctx, spans[i] = tracing.StartMessage(msgs[i].Ctx, r.tracer, r.cfg.Name, it.subject(), it.ev)
		}
	}
	outs, err := bh.HandleBatch(ctx, tx, msgs)
	if err == nil && len(outs) != len(msgs) {
		err = fmt.Errorf("%s: HandleBatch returned %d results for %d messages", r.cfg.Name, len(outs), len(msgs))
	}
	share := time.Since(start) / time.Duration(len(todo))
	for i, it := range todo {
		if spans[i] != nil {
			tracing.End(spans[i], err)
		}
		it.handled = share
		if err == nil {
			it.emitted = r.caused(msgs[i].Ctx, it, outs[i])
			out = append(out, it.emitted...)
		}
	}
	return out, err
}
