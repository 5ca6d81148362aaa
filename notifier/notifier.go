// Package notifier turns domain events into user-facing notifications: it
// appends each to the user's inbox (public.notifications) with a gap-free
// per-user sequence and emits it, through the outbox, on the user's
// channel (ntf.user.<user>); the WebSocket server also delivers it on the
// order's channel and the ops feed.
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
//   - a notification of a kind its user muted (notifier/prefs) is not
//     made at all: no seq, no inbox row, no message, so it is neither
//     pushed nor counted unread and the seq stays gap-free. The
//     preferences are read in the same statement as the ids already
//     notified, so muting costs no statement per batch.
//
// What an event does not carry (the customer of a payments.refunded) is
// read from the orders read model (public.orders), never from a saga
// participant's tables (orders.*, inventory.*, payments.*): a participant
// owns its schema alone. Hazard: the read model trails the events, so a
// refund of an order the projection has not applied yet is retried.
//
// One notification is one outbox row and one message, on the user's
// channel; a notification about an order names it in the
// events.HeaderOrder header, and the WebSocket server derives the order's
// channel and the ops feed from it (publishing a copy per audience cost
// two more rows, publishes and stream writes per notification).
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

// Notifier is the runner.BatchHandler of the notifier consumer.
type Notifier struct {
	renderers map[string]renderer
}

var _ runner.BatchHandler = (*Notifier)(nil)

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

// Handle implements runner.Handler: the batch of one.
func (n *Notifier) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	_, err := n.HandleBatch(ctx, tx, []runner.Msg{{Ctx: ctx, Event: ev}})
	return nil, err
}

// HandleBatch implements runner.BatchHandler: it renders every event (one
// query for the facts events lack) and appends the notifications with
// appendAll's constant number of statements. Events without a renderer
// have no effect. It emits nothing through the runner: appendAll writes
// the outbox rows itself (one per notification).
func (n *Notifier) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	type rendered struct {
		cause *event.Event
		r     renderer
		facts orderFacts
	}
	todo := make([]rendered, 0, len(msgs))
	for _, m := range msgs {
		ev := m.Event
		r, ok := n.renderers[ev.Type()]
		if !ok {
			continue
		}
		d, err := decodeFacts(ev)
		if err != nil {
			return nil, err
		}
		todo = append(todo, rendered{cause: ev, r: r, facts: d})
	}
	facts := make([]*orderFacts, len(todo))
	for i := range todo {
		facts[i] = &todo[i].facts
	}
	if err := complete(ctx, tx, facts); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	entries := make([]entry, len(todo))
	for i, t := range todo {
		if t.facts.CustomerID == "" {
			return nil, runner.Permanent(fmt.Errorf("notify %s %s: no user to notify", t.cause.Type(), t.cause.ID()))
		}
		title, body := t.r.text(t.facts)
		entries[i] = entry{cause: t.cause, msg: Message{UserID: t.facts.CustomerID, OrderID: t.facts.OrderID, Kind: t.r.kind, Title: title, Body: body}}
	}
	return make([][]*event.Event, len(msgs)), appendAll(ctx, tx, entries)
}

// Message is what a renderer makes of a domain event.
type Message struct {
	UserID  string
	OrderID string // "" when the event is not about an order
	Kind    string // e.g. order.confirmed
	Title   string
	Body    string
}

// entry is one notification to append: msg, made from the event cause.
type entry struct {
	cause *event.Event
	msg   Message
}

// Append adds msg, made from the domain event cause, to the user's inbox
// with the next seq (unless the user muted msg.Kind: then nothing) and
// writes it to the outbox on the user's channel
// (naming the order, if any, in events.HeaderOrder). It runs inside
// tx and must not be called outside a transaction that also records the
// cause as handled (the runner's inbox).
func Append(ctx context.Context, tx pgx.Tx, cause *event.Event, msg Message) error {
	return appendAll(ctx, tx, []entry{{cause: cause, msg: msg}})
}

// appendAll is Append for many entries in four statements whatever their
// number: the entries to skip (ids already notified, kinds their user
// muted), one counter upsert for every user (in
// user order, so concurrent writers lock counters in the same order and
// cannot deadlock), one insert of every notification, one outbox insert.
// A user's notifications get consecutive seqs in entry order.
func appendAll(ctx context.Context, tx pgx.Tx, entries []entry) error {
	if len(entries) == 0 {
		return nil
	}
	ids := make([]string, len(entries))
	userOf := make([]string, len(entries))
	kindOf := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = uuid.NewSHA1(notificationIDNamespace, []byte(e.cause.ID())).String()
		userOf[i], kindOf[i] = e.msg.UserID, e.msg.Kind
	}
	// The entries to skip, by ordinal: already notified (a redelivery), or
	// of a kind the user muted (notifier/prefs). A muted entry takes no
	// seq, so the user's sequence stays gap-free; it is neither stored nor
	// published, so it is never pushed nor counted unread.
	rows, err := tx.Query(ctx, `
		SELECT x.o FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(id, u, k, o)
		WHERE EXISTS (SELECT 1 FROM public.notifications n WHERE n.event_id = x.id)
		   OR EXISTS (SELECT 1 FROM public.notification_preferences p WHERE p.user_id = x.u AND x.k = ANY (p.muted_kinds))`,
		ids, userOf, kindOf)
	if err != nil {
		return fmt.Errorf("notify: look up %d ids and preferences: %w", len(ids), err)
	}
	skipped, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("notify: look up %d ids and preferences: %w", len(ids), err)
	}
	skip := make([]bool, len(entries))
	for _, o := range skipped {
		skip[o-1] = true
	}
	count := map[string]int64{}
	for i, e := range entries {
		if !skip[i] {
			count[e.msg.UserID]++
		}
	}
	if len(count) == 0 {
		return nil
	}
	users := make([]string, 0, len(count))
	for u := range count {
		users = append(users, u)
	}
	sort.Strings(users)
	counts := make([]int64, len(users))
	for i, u := range users {
		counts[i] = count[u]
	}
	rows, err = tx.Query(ctx, `
		INSERT INTO public.notification_counters AS c (user_id, last_seq)
		SELECT u, n FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS x(u, n, o) ORDER BY o
		ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
		RETURNING user_id, last_seq`, users, counts)
	if err != nil {
		return fmt.Errorf("notify: next seqs of %d users: %w", len(users), err)
	}
	next := make(map[string]int64, len(users))
	for rows.Next() {
		var u string
		var last int64
		if err := rows.Scan(&u, &last); err != nil {
			rows.Close()
			return fmt.Errorf("notify: next seqs: %w", err)
		}
		next[u] = last - count[u] + 1
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("notify: next seqs: %w", err)
	}

	var (
		cols struct {
			user, id, kind, title, body, links, payload []string
			seq                                         []int64
			order                                       []*string
			at                                          []time.Time
		}
		msgs []outbox.Message
	)
	for i, e := range entries {
		if skip[i] {
			continue
		}
		seq := next[e.msg.UserID]
		next[e.msg.UserID]++
		ntf, links, err := notification(e, ids[i], seq)
		if err != nil {
			return err
		}
		structured, err := json.Marshal(ntf)
		if err != nil {
			return fmt.Errorf("notify %s: encode: %w", e.cause.ID(), err)
		}
		var orderID *string
		if e.msg.OrderID != "" {
			orderID = &e.msg.OrderID
		}
		cols.user = append(cols.user, e.msg.UserID)
		cols.seq = append(cols.seq, seq)
		cols.id = append(cols.id, ids[i])
		cols.kind = append(cols.kind, e.msg.Kind)
		cols.title = append(cols.title, e.msg.Title)
		cols.body = append(cols.body, e.msg.Body)
		cols.links = append(cols.links, string(links))
		cols.payload = append(cols.payload, string(structured))
		cols.order = append(cols.order, orderID)
		cols.at = append(cols.at, ntf.Time())

		m, err := outbox.Encode(ctx, ntf)
		if err != nil {
			return fmt.Errorf("notify %s: %w", e.cause.ID(), err)
		}
		if e.msg.OrderID != "" {
			m.Header[events.HeaderOrder] = []string{e.msg.OrderID}
		}
		msgs = append(msgs, m)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO public.notifications (user_id, seq, event_id, kind, title, body, links, payload, order_id, created_at)
		SELECT u, s, e, k, t, b, l::jsonb, p::jsonb, o, c
		FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
		  AS x(u, s, e, k, t, b, l, p, o, c)`,
		cols.user, cols.seq, cols.id, cols.kind, cols.title, cols.body, cols.links, cols.payload, cols.order, cols.at)
	if err != nil {
		return fmt.Errorf("notify: insert %d notifications: %w", len(cols.id), err)
	}
	if err := outbox.AddMessages(ctx, tx, msgs...); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// notification builds the notification event of e with its id and seq,
// checked against its schema (it is pushed to browsers as is), and its
// links as JSON.
func notification(e entry, id string, seq int64) (*event.Event, []byte, error) {
	cause, msg := e.cause, e.msg
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
		return nil, nil, fmt.Errorf("notify %s: %w", cause.ID(), err)
	}
	if err := schemas.CheckEmitted(ntf); err != nil {
		return nil, nil, runner.Permanent(fmt.Errorf("notify %s: %w", cause.ID(), err))
	}
	links, err := json.Marshal(data.Links)
	if err != nil {
		return nil, nil, fmt.Errorf("notify %s: encode links: %w", cause.ID(), err)
	}
	return ntf, links, nil
}

// errNoOrder is returned when an event names an order the orders read
// model does not (yet) hold: transient, since the projection trails the
// events and events may overtake each other.
var errNoOrder = errors.New("order not found")
