// The decode phase: a delivery becomes an item, with its event, its
// logger and the context a handler reads it from.

package runner

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/schemas"
)

type outcome int

const (
	pending    outcome = iota
	ack                // applied, or a duplicate
	nak                // retry after delay
	deadLetter         // give up: publish to DLQ, then terminate
)

type item struct {
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	ev      *event.Event
	outcome outcome
	delay   time.Duration
	reason  error
	dup     bool           // acked because the inbox had it
	emitted []*event.Event // what the handler emitted (committed with the batch)
	handled time.Duration  // time in applyOne
	log     *slog.Logger   // built on first use by logFor
}

// subject is the subject the message was published on (a partition's
// copy carries a prefix: broker.OriginalSubject).
func (it *item) subject() string { return broker.OriginalSubject(it.msg.Subject()) }

// logFor returns the message's logger: every line carries the event id,
// type, correlation id and trace id (when the message decoded), so one
// grep follows a message and its saga. Payloads are never logged.
func (r *Runner) logFor(it *item) *slog.Logger {
	if it.log != nil {
		return it.log
	}
	attrs := []any{"subject", it.subject()}
	if it.meta != nil {
		attrs = append(attrs, "stream_seq", it.meta.Sequence.Stream, "attempt", it.meta.NumDelivered)
	}
	if it.ev != nil {
		attrs = append(attrs, "event_id", it.ev.ID(), "type", it.ev.Type(),
			"correlation_id", events.StringExt(it.ev, events.ExtCorrelationID),
			"trace_id", TraceID(events.StringExt(it.ev, events.ExtTraceparent)))
	} else if h := it.msg.Headers(); h != nil {
		// Undecodable: log what the headers say, unvalidated.
		attrs = append(attrs, "event_id", h.Get("ce-id"), "type", h.Get("ce-type"))
	}
	it.log = r.log.With(attrs...)
	return it.log
}

// TraceID extracts the trace id from a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"); "" when it is malformed.
func TraceID(traceparent string) string {
	if len(traceparent) != 55 || traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-' {
		return ""
	}
	return traceparent[3:35]
}

type loggerKey struct{}

// LoggerFrom returns the logger of the message being handled (with its
// event id, type, correlation id and trace id), or slog.Default() outside
// a handler.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if f, ok := ctx.Value(loggerKey{}).(func() *slog.Logger); ok {
		return f()
	}
	return slog.Default()
}

// Delivery describes the message being handled; handlers read it with
// DeliveryFrom (projections use the stream sequence as their position).
type Delivery struct {
	Consumer     string
	Subject      string
	StreamSeq    uint64
	NumDelivered uint64
}

type deliveryKey struct{}

// DeliveryFrom returns the delivery of the message being handled.
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

func (r *Runner) decode(it *item) {
	meta, err := it.msg.Metadata()
	if err != nil {
		it.outcome, it.reason = deadLetter, fmt.Errorf("read metadata: %w", err)
		return
	}
	it.meta = meta
	ev, err := cenats.DecodeLimit(it.msg.Headers(), it.msg.Data(), r.cfg.MaxPayload)
	if err == nil {
		err = subjectMatches(it.subject(), ev)
	}
	if err == nil && !r.cfg.Trusted {
		err = schemas.ValidateEvent(ev)
	}
	if err == nil && r.cfg.Upcast != nil {
		ev, err = r.cfg.Upcast(ev)
	}
	if err != nil {
		it.outcome, it.reason = deadLetter, Invalid(err)
		return
	}
	it.ev = ev
}

// subjectMatches refuses a message published on a subject other than its
// type's (and aggregate's): NATS permissions say who may publish on which
// subject, so a type smuggled onto another subject would bypass them.
func subjectMatches(subject string, ev *event.Event) error {
	want, err := events.NATSSubject(ev)
	if err != nil {
		return err
	}
	if subject != want {
		return fmt.Errorf("event %s of type %s arrived on subject %s, its type belongs on %s", ev.ID(), ev.Type(), subject, want)
	}
	return nil
}
