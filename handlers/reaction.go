package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/internal/runner"
)

// Participants of the order saga (and the roles that run them).
const (
	Orders    = "orders"
	Inventory = "inventory"
	Payments  = "payments"
)

// Deadline is the trigger of a reaction started by a timer rather than a
// message (the order deadline sweeper).
const Deadline = "deadline"

// Reaction declares what a handler reacts to and what it may emit. The saga
// table in sagas/ is checked against the reactions the roles wire, so a
// handler's Reaction must say exactly what its code does.
type Reaction struct {
	Step        string   // the saga step's name, e.g. reserve_stock
	Participant string   // Orders, Inventory or Payments
	Trigger     string   // CloudEvent type handled, or Deadline
	Emits       []string // CloudEvent types it may emit
}

// Reactor is a handler that declares its reaction.
type Reactor interface {
	runner.Handler
	Reaction() Reaction
}

// Router is the handler of one durable consumer: it hands each message to
// the reactors registered for its type, in registration order, inside the
// same transaction, and returns everything they emit. Several reactors for
// one type (release_stock and return_stock both react to orders.cancelled)
// each decide from their own state whether they apply.
//
// Invariant: a reactor emits only the types its Reaction declares in
// Emits. The saga table (sagas/) is checked against the declarations, so
// an undeclared emission would be a path nobody reviewed: Handle refuses
// it (ErrUndeclaredEmit, permanent) and the transaction rolls back.
type Router struct {
	byType map[string][]Reactor
	all    []Reactor
	lock   func(ctx context.Context, tx pgx.Tx, evs []*event.Event) error // nil: none (LockWith)
}

var _ runner.BatchLocker = (*Router)(nil)

// LockWith makes lock the router's LockBatch: the participant's function
// that locks, in one stable order, every row its reactions to a batch will
// lock (runner.BatchLocker). It returns r.
func (r *Router) LockWith(lock func(ctx context.Context, tx pgx.Tx, evs []*event.Event) error) *Router {
	r.lock = lock
	return r
}

// LockBatch implements runner.BatchLocker: the function given to
// LockWith, nothing without one.
func (r *Router) LockBatch(ctx context.Context, tx pgx.Tx, evs []*event.Event) error {
	if r.lock == nil {
		return nil
	}
	return r.lock(ctx, tx, evs)
}

// NewRouter validates and indexes the reactors.
func NewRouter(rs ...Reactor) (*Router, error) {
	r := &Router{byType: map[string][]Reactor{}}
	for _, x := range rs {
		if x == nil {
			return nil, errors.New("router: nil reactor")
		}
		re := x.Reaction()
		if _, ok := events.Lookup(re.Trigger); !ok {
			return nil, fmt.Errorf("router: reaction %s: trigger %q is not a catalogued type", re.Step, re.Trigger)
		}
		r.byType[re.Trigger] = append(r.byType[re.Trigger], x)
		r.all = append(r.all, x)
	}
	if len(r.all) == 0 {
		return nil, errors.New("router: no reactors")
	}
	return r, nil
}

// Handle implements runner.Handler.
func (r *Router) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	ctx, log := withStepLog(ctx, nil)
	out, err := r.route(ctx, tx, ev)
	if err != nil {
		return nil, err
	}
	return out, log.flush(ctx, tx)
}

// BatchReactor is a Reactor with a set-based path: HandleBatch reacts to
// several messages of its trigger at once, with one statement per table
// rather than per message, and returns out[i] for msgs[i]. The messages
// are in stream order and several may concern one aggregate: the reactor
// applies them in that order (its pure transition runs over the batch in
// memory). It takes row locks in a stable order (by key). An error fails
// the whole batch, which the runner then redoes message by message
// (Handle), so HandleBatch need not say which message failed.
type BatchReactor interface {
	Reactor
	HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error)
}

// HandleBatch implements runner.BatchHandler. The messages of a type whose
// reactors are all BatchReactors are handed over as one group per type;
// the rest run one by one, after the groups. Per-aggregate order is kept:
// a message joins its type's group only if every earlier message of its
// aggregate (partition key) in the batch is in that same group; otherwise
// it and every later message of its aggregate run one by one, in stream
// order. Messages of different aggregates commute (any interleaving of
// them is one the stream could have delivered). The batch's saga log
// steps are written in one statement at the end.
func (r *Router) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	ctx, log := withStepLog(ctx, nil)
	out := make([][]*event.Event, len(msgs))
	groups, single := r.plan(msgs)
	for _, g := range groups {
		in := make([]runner.Msg, len(g.idx))
		for j, i := range g.idx {
			mctx, _ := withStepLog(msgs[i].Ctx, log)
			in[j] = runner.Msg{Ctx: mctx, Event: msgs[i].Event}
		}
		for _, x := range r.byType[g.typ] {
			res, err := x.(BatchReactor).HandleBatch(ctx, tx, in)
			if err != nil {
				return nil, err
			}
			if len(res) != len(in) {
				return nil, fmt.Errorf("reaction %s: %d results for %d messages", x.Reaction().Step, len(res), len(in))
			}
			for j, evs := range res {
				if err := checkEmits(x.Reaction(), evs); err != nil {
					return nil, err
				}
				out[g.idx[j]] = append(out[g.idx[j]], evs...)
			}
		}
	}
	for _, i := range single {
		mctx, _ := withStepLog(msgs[i].Ctx, log)
		evs, err := r.route(mctx, tx, msgs[i].Event)
		if err != nil {
			return nil, err
		}
		out[i] = evs
	}
	return out, log.flush(ctx, tx)
}

// group is the messages (indices into the batch) of one type handled set-based.
type group struct {
	typ string
	idx []int
}

// plan splits a batch into set-based groups and messages handled one by
// one (see HandleBatch for the rule).
func (r *Router) plan(msgs []runner.Msg) (groups []group, single []int) {
	at := map[string]int{}         // type -> index in groups
	keyType := map[string]string{} // aggregate -> the type of its group, "" once it runs one by one
	for i, m := range msgs {
		typ, key := m.Event.Type(), events.PartitionKey(m.Event)
		prev, seen := keyType[key]
		if !r.batchable(typ) || key == "" || (seen && prev != typ) {
			keyType[key] = ""
			single = append(single, i)
			continue
		}
		keyType[key] = typ
		g, ok := at[typ]
		if !ok {
			g = len(groups)
			at[typ] = g
			groups = append(groups, group{typ: typ})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	return groups, single
}

// batchable reports whether every reactor of typ has a set-based path.
func (r *Router) batchable(typ string) bool {
	rs := r.byType[typ]
	for _, x := range rs {
		if _, ok := x.(BatchReactor); !ok {
			return false
		}
	}
	return len(rs) > 0
}

// route hands ev to its reactors.
func (r *Router) route(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	rs, ok := r.byType[ev.Type()]
	if !ok {
		return nil, runner.Permanent(fmt.Errorf("no reaction to %s on this consumer", ev.Type()))
	}
	var out []*event.Event
	for _, x := range rs {
		evs, err := x.Handle(ctx, tx, ev)
		if err != nil {
			return nil, err
		}
		if err := checkEmits(x.Reaction(), evs); err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// ErrUndeclaredEmit is wrapped by the (permanent) error of a reactor that
// emitted a type its Reaction does not declare.
var ErrUndeclaredEmit = errors.New("emitted a type the reaction does not declare")

// checkEmits refuses events whose type re.Emits does not list.
func checkEmits(re Reaction, evs []*event.Event) error {
	for _, e := range evs {
		if e == nil {
			return runner.Permanent(fmt.Errorf("reaction %s: emitted a nil event", re.Step))
		}
		if !slices.Contains(re.Emits, e.Type()) {
			return runner.Permanent(fmt.Errorf("reaction %s: %s: %w (Emits: %v)", re.Step, e.Type(), ErrUndeclaredEmit, re.Emits))
		}
	}
	return nil
}

// FilterSubjects are the NATS subject filters of the triggers.
func (r *Router) FilterSubjects() []string {
	var out []string
	for _, x := range r.all {
		f := events.MustLookup(x.Reaction().Trigger).SubjectFilter()
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// Reactions lists the reactions in registration order.
func (r *Router) Reactions() []Reaction {
	out := make([]Reaction, len(r.all))
	for i, x := range r.all {
		out[i] = x.Reaction()
	}
	return out
}

// Step is one saga log row: what a participant did (or deliberately did
// not do, outcome "ignored") for an order, the message that caused it (nil
// for the deadline sweeper) and the event it emitted, if any.
type Step struct {
	OrderID, Step, Participant string
	Cause                      *event.Event // nil for the deadline sweeper
	Outcome, Detail            string
	Emitted                    *event.Event
}

// stepLog holds the saga log rows of a handler call until flush writes
// them in one statement (rows of a rolled-back call are dropped with it:
// flush runs in the same transaction, before the runner commits).
type stepLog struct {
	order, step, participant, causeID, causeType, outcome []string
	detail, emittedID, emittedType                        []*string
}

type stepLogKey struct{}

// withStepLog makes LogStep buffer into l (a new log when l is nil).
func withStepLog(ctx context.Context, l *stepLog) (context.Context, *stepLog) {
	if l == nil {
		l = &stepLog{}
	}
	return context.WithValue(ctx, stepLogKey{}, l), l
}

// flush writes the buffered steps, in the order they were logged: queued
// on the transaction's tail when it has one (nothing in the transaction
// reads the saga log back), else at once. A row is unique per (order,
// step, triggering event): a step is logged once even if a handler ran
// twice for one message.
func (l *stepLog) flush(ctx context.Context, tx pgx.Tx) error {
	if len(l.order) == 0 {
		return nil
	}
	const insert = `
		INSERT INTO core.saga_log (order_id, step, participant, event_id, event_type, outcome, detail, emitted_id, emitted_type)
		SELECT o::uuid, s, p, e, t, x, d, ei, et
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
		  WITH ORDINALITY AS u(o, s, p, e, t, x, d, ei, et, n)
		ORDER BY n
		ON CONFLICT (order_id, step, event_id) DO NOTHING`
	args := []any{l.order, l.step, l.participant, l.causeID, l.causeType, l.outcome, l.detail, l.emittedID, l.emittedType}
	if tail := pgtx.From(ctx); tail != nil {
		tail.Queue(insert, args...)
		*l = stepLog{}
		return nil
	}
	_, err := tx.Exec(ctx, insert, args...)
	if err != nil {
		return fmt.Errorf("saga log: %d steps: %w", len(l.order), err)
	}
	*l = stepLog{}
	return nil
}

// BufferSteps makes LogStep hold the steps logged under the returned
// context in memory until flush writes them, in one statement, in the
// transaction it is given — as the Router does for each call. Callers
// other than the Router (tests replaying a batch message by message) use
// it to log as the Router would.
func BufferSteps(ctx context.Context) (context.Context, func(context.Context, pgx.Tx) error) {
	ctx, l := withStepLog(ctx, nil)
	return ctx, l.flush
}

// LogStep appends a step to core.saga_log in the handler's transaction:
// to the context's step log when it has one (the Router's), else at once.
func LogStep(ctx context.Context, tx pgx.Tx, s Step) error {
	l, buffered := ctx.Value(stepLogKey{}).(*stepLog)
	if !buffered {
		l = &stepLog{}
	}
	causeID, causeType := "", Deadline
	if s.Cause != nil {
		causeID, causeType = s.Cause.ID(), s.Cause.Type()
	}
	var emittedID, emittedType *string
	if s.Emitted != nil {
		id, t := s.Emitted.ID(), s.Emitted.Type()
		emittedID, emittedType = &id, &t
	}
	var detail *string
	if s.Detail != "" {
		detail = &s.Detail
	}
	if causeID == "" && s.Emitted != nil {
		causeID = s.Emitted.ID()
	}
	l.order = append(l.order, s.OrderID)
	l.step = append(l.step, s.Step)
	l.participant = append(l.participant, s.Participant)
	l.causeID = append(l.causeID, causeID)
	l.causeType = append(l.causeType, causeType)
	l.outcome = append(l.outcome, s.Outcome)
	l.detail = append(l.detail, detail)
	l.emittedID = append(l.emittedID, emittedID)
	l.emittedType = append(l.emittedType, emittedType)
	if buffered {
		return nil
	}
	return l.flush(ctx, tx)
}

// EmitAndLog builds an event caused by s.Cause (when set) and appends the
// step, naming the event, to the saga log.
func EmitAndLog(ctx context.Context, tx pgx.Tx, s Step, ceType, subject string, data any, opts ...events.Option) (*event.Event, error) {
	if s.Cause != nil {
		opts = append(opts, events.CausedBy(s.Cause))
	}
	ev, err := events.New(ceType, subject, data, opts...)
	if err != nil {
		return nil, err
	}
	s.Emitted = ev
	if err := LogStep(ctx, tx, s); err != nil {
		return nil, err
	}
	return ev, nil
}

// Ignore logs that a reaction deliberately did nothing for an order (a
// late or superseded event) and emits nothing.
func Ignore(ctx context.Context, tx pgx.Tx, orderID, stepName, participant string, cause *event.Event, why string) ([]*event.Event, error) {
	err := LogStep(ctx, tx, Step{OrderID: orderID, Step: stepName, Participant: participant, Cause: cause,
		Outcome: "ignored", Detail: why})
	return nil, err
}

// Decode reads an event's data; undecodable data is invalid input.
func Decode(ev *event.Event, v any) error {
	if err := events.DecodeData(ev, v); err != nil {
		return runner.Invalid(err)
	}
	return nil
}

// UTCNow is the clock of reactions that have no injected one.
func UTCNow() time.Time { return time.Now().UTC() }

// OrderKey is the canonical text of an order id (PostgreSQL's spelling of
// the UUID): the key of a batch's maps, so that two spellings of one id
// name one order.
func OrderKey(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", fmt.Errorf("order id %q: %w", id, err)
	}
	return u.String(), nil
}
