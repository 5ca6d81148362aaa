// Package notifier turns domain events into user-facing notifications: it
// appends each to the user's inbox (public.notifications) with a gap-free
// per-user sequence and emits it, through the outbox, on the user's
// channel, the order's channel and the ops feed.
//
// Invariants, all held by doing everything in the runner's transaction:
//   - seq is taken from public.notification_counters with an upsert that
//     locks the user's counter row until commit, so two notifiers writing
//     for one user serialise and a rolled-back attempt leaves no hole;
//   - the inbox row and the outbox rows commit together, so the inbox and
//     the NOTIFICATIONS stream never disagree;
//   - the notification's id is derived from the source event's id, so even
//     a second notifier consumer (a renamed durable) cannot make a second
//     notification of one event (event_id is unique in the inbox).
//
// Hazard: one notification is published three times (user, order, ops)
// with the same CloudEvent id; the outbox rows carry distinct message ids
// (<id>, <id>/order, <id>/ops) so that JetStream's duplicate window, which
// is per stream and not per subject, does not drop the copies.
package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/schemas"
)

// notificationIDNamespace derives a notification's id from its source
// event's id.
var notificationIDNamespace = uuid.MustParse("0b6f3c1e-54a8-4f0e-9d0c-7a1d1c5e2f44")

// Notifier is the runner.Handler of the notifier consumer.
type Notifier struct {
	renderers map[string]Renderer
}

var _ runner.Handler = (*Notifier)(nil)

// New builds a notifier with the default renderers (see renderers.go).
func New() *Notifier { return &Notifier{renderers: defaultRenderers()} }

// Subjects are the EVENTS subject filters of the event types the notifier
// renders and the catalogue knows (types of other contexts that are not in
// this build are left out).
func (n *Notifier) Subjects() []string {
	var out []string
	for t := range n.renderers {
		if spec, ok := events.Lookup(t); ok && spec.Kind == events.Event {
			out = append(out, spec.SubjectFilter())
		}
	}
	sort.Strings(out)
	return out
}

// Handle implements runner.Handler. Events without a renderer, and events
// a renderer declines (not meant for a user), have no effect.
func (n *Notifier) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	render, ok := n.renderers[ev.Type()]
	if !ok {
		return nil, nil
	}
	msg, ok, err := render(ctx, tx, ev)
	if err != nil || !ok {
		return nil, err
	}
	if msg.UserID == "" {
		return nil, runner.Permanent(fmt.Errorf("notify %s %s: no user to notify", ev.Type(), ev.ID()))
	}
	if err := Append(ctx, tx, ev, msg); err != nil {
		return nil, err
	}
	// Append wrote the outbox rows itself (three subjects, one event).
	return nil, nil
}

// Message is what a renderer makes of a domain event.
type Message struct {
	UserID  string
	OrderID string // "" when the event is not about an order
	Kind    string // e.g. order.confirmed
	Title   string
	Body    string
}

// Append adds msg, made from the domain event cause, to the user's inbox
// with the next seq and writes it to the outbox on the user's channel and,
// for an order, on the order's channel and the ops feed. It runs inside
// tx and must not be called outside a transaction that also records the
// cause as handled (the runner's inbox).
func Append(ctx context.Context, tx pgx.Tx, cause *event.Event, msg Message) error {
	id := uuid.NewSHA1(notificationIDNamespace, []byte(cause.ID())).String()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM public.notifications WHERE event_id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("notify %s: look up %s: %w", cause.ID(), id, err)
	}
	if exists {
		return nil
	}
	var seq int64
	err := tx.QueryRow(ctx, `
		INSERT INTO public.notification_counters AS c (user_id, last_seq) VALUES ($1, 1)
		ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + 1
		RETURNING last_seq`, msg.UserID).Scan(&seq)
	if err != nil {
		return fmt.Errorf("notify %s: next seq of user: %w", cause.ID(), err)
	}
	data := events.NotificationData{
		UserID: msg.UserID, Seq: seq, Kind: msg.Kind, Title: msg.Title, Body: msg.Body,
		OrderID: msg.OrderID,
		Source:  events.NotificationCause{ID: cause.ID(), Type: cause.Type(), Subject: cause.Subject()},
	}
	if !cause.Time().IsZero() {
		data.Source.Time = cause.Time().UTC().Format(time.RFC3339Nano)
	}
	if msg.OrderID != "" {
		data.Links = events.NotificationLinks{
			Order:    "/v1/orders/" + msg.OrderID,
			Timeline: "/v1/orders/" + msg.OrderID + "/timeline",
		}
	}
	ntf, err := events.New(events.NotificationV1, events.UserChannel(msg.UserID), data,
		events.WithID(id), events.CausedBy(cause))
	if err != nil {
		return fmt.Errorf("notify %s: %w", cause.ID(), err)
	}
	if err := schemas.ValidateEvent(ntf); err != nil {
		return runner.Permanent(fmt.Errorf("notify %s: %w", cause.ID(), err))
	}
	structured, err := json.Marshal(ntf)
	if err != nil {
		return fmt.Errorf("notify %s: encode: %w", cause.ID(), err)
	}
	links, err := json.Marshal(data.Links)
	if err != nil {
		return fmt.Errorf("notify %s: encode links: %w", cause.ID(), err)
	}
	var orderID *string
	if msg.OrderID != "" {
		orderID = &msg.OrderID
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO public.notifications (user_id, seq, event_id, kind, title, body, links, payload, order_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		msg.UserID, seq, id, msg.Kind, msg.Title, msg.Body, links, structured, orderID, ntf.Time())
	if err != nil {
		return fmt.Errorf("notify %s: insert seq %d: %w", cause.ID(), seq, err)
	}
	user, err := outbox.Encode(ctx, ntf)
	if err != nil {
		return fmt.Errorf("notify %s: %w", cause.ID(), err)
	}
	msgs := []outbox.Message{user}
	if msg.OrderID != "" {
		order, ops := user, user
		order.EventID, order.Subject = id+"/order", events.NotificationPrefix+events.OrderChannel(msg.OrderID)
		ops.EventID, ops.Subject = id+"/ops", events.NotificationPrefix+events.ChannelOpsOrders
		msgs = append(msgs, order, ops)
	}
	if err := outbox.AddMessages(ctx, tx, msgs...); err != nil {
		return fmt.Errorf("notify %s: %w", cause.ID(), err)
	}
	return nil
}

// errNoOrder is returned when an event names an order the write model
// does not (yet) hold: transient, since events may overtake each other.
var errNoOrder = errors.New("order not found")
