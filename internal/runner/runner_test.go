package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func placeOrder(t *testing.T, customer string, qty int64) *event.Event {
	t.Helper()
	e, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		CustomerID: customer, Currency: "EUR",
		Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: qty, UnitPrice: 1250}},
	}, events.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publishRaw publishes without validation (to inject bad input) and with
// an explicit Nats-Msg-Id.
func publishRaw(t *testing.T, js jetstream.JetStream, e *event.Event, msgID string) *jetstream.PubAck {
	t.Helper()
	subject, err := events.NATSSubject(e)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cenats.NewMsg(subject, e)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, msgID)
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

type system struct {
	t    *testing.T
	js   jetstream.JetStream
	nc   *nats.Conn
	pool *pgxpool.Pool
	url  string
}

func newSystem(t *testing.T) *system {
	t.Helper()
	emb, nc, js := testenv.JetStream(t)
	return &system{t: t, js: js, nc: nc, pool: testenv.Pool(t), url: emb.URL}
}

// start runs a runner until the test ends; it returns the runner.
func (s *system) start(cfg runner.Config, h runner.Handler, opts ...runner.Option) (*runner.Runner, <-chan error) {
	s.t.Helper()
	return s.startWith(s.js, cfg, h, opts...)
}

func (s *system) startWith(js jetstream.JetStream, cfg runner.Config, h runner.Handler, opts ...runner.Option) (*runner.Runner, <-chan error) {
	s.t.Helper()
	r, err := runner.New(cfg, js, s.pool, h, opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- r.Run(ctx)
	}()
	s.t.Cleanup(func() { cancel(); <-finished })
	return r, done
}

func (s *system) count(query string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func streamCount(t *testing.T, js jetstream.JetStream, stream, subject string) int {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func ordersConsumer(name string) runner.Config {
	return runner.Config{
		Name: name, Stream: broker.StreamCommands,
		FilterSubjects: []string{"cmd.orders.place"},
		Backoff:        func(int) time.Duration { return 20 * time.Millisecond },
		MaxDeliver:     3,
	}
}

func mustPlaceOrder(t *testing.T) runner.Handler {
	h, err := orders.NewPlaceOrder(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDuplicateDeliveryHasOneEffect(t *testing.T) {
	s := newSystem(t)
	run := uuid.NewString()[:8] // fresh names under -count=N
	customer := "dup-" + t.Name() + "-" + run
	cmd := placeOrder(t, customer, 1)

	// Duplicate publishes with the same id: the broker drops them inside
	// its duplicate window...
	for i := 0; i < 3; i++ {
		ack := publishRaw(t, s.js, cmd, cmd.ID())
		if (i > 0) != ack.Duplicate {
			t.Fatalf("publish %d: Duplicate=%v", i, ack.Duplicate)
		}
	}
	// ...and past it (a producer retrying late: a different Nats-Msg-Id
	// but the same CloudEvent id) the inbox drops them.
	for i := 0; i < 4; i++ {
		publishRaw(t, s.js, cmd, fmt.Sprintf("%s-late-%d", cmd.ID(), i))
	}

	pub, err := outbox.NewPublisher(outbox.PublisherConfig{}, s.pool, s.js, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = pub.Run(ctx) }()
	r, _ := s.start(ordersConsumer("dup-orders-"+run), mustPlaceOrder(t), runner.WithPublisher(pub))
	proj, _ := s.start(runner.Config{Name: "dup-projection", Stream: broker.StreamEvents,
		FilterSubjects: []string{"evt.orders.placed.*"}}, projections.Orders{})

	testenv.Eventually(t, 10*time.Second, "5 deliveries handled", func() bool {
		st := r.Stats()
		return st.Applied.Load()+st.Duplicates.Load() == 5
	})
	testenv.Eventually(t, 10*time.Second, "read model row", func() bool {
		return s.count(`SELECT count(*) FROM public.orders WHERE customer_id = $1`, customer) == 1
	})
	if got := r.Stats().Applied.Load(); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	if got := r.Stats().Duplicates.Load(); got != 4 {
		t.Errorf("duplicates skipped = %d, want 4", got)
	}
	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id = $1`, customer); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	var orderID string
	if err := s.pool.QueryRow(ctx, `SELECT order_id::text FROM orders.orders WHERE customer_id = $1`, customer).Scan(&orderID); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, s.js, broker.StreamEvents, "evt.orders.placed."+orderID); n != 1 {
		t.Errorf("orders.placed events on the stream = %d, want 1", n)
	}
	time.Sleep(100 * time.Millisecond) // let any stray duplicate reach the projection
	if n := s.count(`SELECT count(*) FROM public.orders WHERE customer_id = $1`, customer); n != 1 {
		t.Errorf("read model rows = %d, want 1", n)
	}
	if got := proj.Stats().Applied.Load(); got != 1 {
		t.Errorf("projection applied %d events, want 1", got)
	}
}

func TestCrashBetweenCommitAndAckHasOneEffect(t *testing.T) {
	s := newSystem(t)
	run := uuid.NewString()[:8] // fresh names under -count=N
	customer := "crash-" + t.Name() + "-" + run
	cmd := placeOrder(t, customer, 2)
	publishRaw(t, s.js, cmd, cmd.ID())

	cfg := ordersConsumer("crash-orders-" + run)
	cfg.AckWait = time.Second
	// First process: commits, then "dies" before acking: the hook closes
	// its connection, so the ack can never be sent.
	nc1, js1 := testenv.Connect(t, s.url)
	crashed := errors.New("simulated crash after commit")
	_, done := s.startWith(js1, cfg, mustPlaceOrder(t), runner.WithBeforeAck(func() error {
		nc1.Close()
		return crashed
	}))
	select {
	case err := <-done:
		if !errors.Is(err, crashed) {
			t.Fatalf("first runner ended with %v, want the simulated crash", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first runner did not process the command")
	}
	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id = $1`, customer); n != 1 {
		t.Fatalf("after the crash: orders = %d, want 1 (committed)", n)
	}

	// Second process: the message comes back after AckWait; the inbox
	// makes it a no-op.
	r2, _ := s.start(cfg, mustPlaceOrder(t))
	testenv.Eventually(t, 10*time.Second, "redelivery", func() bool { return r2.Stats().Duplicates.Load() == 1 })
	if got := r2.Stats().Applied.Load(); got != 0 {
		t.Errorf("redelivery applied %d times, want 0", got)
	}
	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id = $1`, customer); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	if n := s.count(`SELECT count(*) FROM core.outbox WHERE convert_from(body, 'UTF8') LIKE '%' || $1 || '%'`, customer); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

// failing wraps a handler and fails permanently for one customer.
type failing struct {
	next     runner.Handler
	customer string
}

func (f failing) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PlaceOrder
	_ = events.DecodeData(ev, &in)
	if in.CustomerID == f.customer {
		return nil, errors.New("warehouse system rejects this customer")
	}
	return f.next.Handle(ctx, tx, ev)
}

func TestPoisonMessagesAreDeadLetteredAndTheRestCommit(t *testing.T) {
	s := newSystem(t)
	purgeCommands(t, s.js)      // a fresh consumer reads the stream from its start
	run := uuid.NewString()[:8] // fresh names under -count=N
	prefix := "poison-" + run
	consumer := "poison-orders-" + run
	good1 := placeOrder(t, prefix+"-good1", 1)
	invalid := placeOrder(t, prefix+"-invalid", 0) // quantity 0 breaks the schema
	poison := placeOrder(t, prefix+"-poison", 1)
	good2 := placeOrder(t, prefix+"-good2", 1)
	for _, e := range []*event.Event{good1, invalid, poison, good2} {
		publishRaw(t, s.js, e, e.ID())
	}

	cfg := ordersConsumer(consumer)
	r, _ := s.start(cfg, failing{next: mustPlaceOrder(t), customer: prefix + "-poison"})
	testenv.Eventually(t, 15*time.Second, "two dead letters", func() bool { return r.Stats().DeadLettered.Load() == 2 })

	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id LIKE $1 || '-good%'`, prefix); n != 2 {
		t.Errorf("good orders = %d, want 2", n)
	}
	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id IN ($1, $2)`, prefix+"-invalid", prefix+"-poison"); n != 0 {
		t.Errorf("bad orders committed: %d", n)
	}

	// The DLQ holds both, with the original body and the reasons.
	cons, err := s.js.CreateOrUpdateConsumer(context.Background(), broker.StreamDLQ, jetstream.ConsumerConfig{
		FilterSubject: runner.DeadLetterSubject(consumer, ">"),
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]jetstream.Msg{}
	for m := range batch.Messages() {
		byID[m.Headers().Get("ce-id")] = m
	}
	if len(byID) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(byID))
	}
	inv := byID[invalid.ID()]
	if inv == nil {
		t.Fatal("invalid message not dead-lettered")
	}
	if reason := inv.Headers().Get(runner.HdrDLQReason); !strings.Contains(reason, "/lines/0/quantity") {
		t.Errorf("invalid reason %q does not name the field", reason)
	}
	if a := inv.Headers().Get(runner.HdrDLQAttempts); a != "1" {
		t.Errorf("invalid message attempts = %s, want 1 (no retry for invalid input)", a)
	}
	p := byID[poison.ID()]
	if p == nil {
		t.Fatal("poison message not dead-lettered")
	}
	if reason := p.Headers().Get(runner.HdrDLQReason); !strings.Contains(reason, "warehouse system rejects") {
		t.Errorf("poison reason %q", reason)
	}
	if a := p.Headers().Get(runner.HdrDLQAttempts); a != "3" {
		t.Errorf("poison attempts = %s, want MaxDeliver=3", a)
	}
	if string(p.Data()) != string(poison.Data()) {
		t.Errorf("dead letter body differs from the original")
	}
	if got := p.Headers().Get(runner.HdrDLQConsumer); got != consumer {
		t.Errorf("consumer header = %q", got)
	}
}

func TestCommittedSeesOnlyTheEventsOfCommittedMessages(t *testing.T) {
	s := newSystem(t)
	prefix := "committed-" + t.Name()
	good := placeOrder(t, prefix+"-good", 1)
	bad := placeOrder(t, prefix+"-bad", 1)
	for _, e := range []*event.Event{good, bad} {
		publishRaw(t, s.js, e, e.ID())
	}
	var mu sync.Mutex
	var seen []*event.Event
	cfg := ordersConsumer("committed-orders")
	cfg.MaxDeliver = 1
	r, _ := s.start(cfg, failing{next: mustPlaceOrder(t), customer: prefix + "-bad"},
		runner.WithCommitted(func(evs []*event.Event) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, evs...)
		}))
	testenv.Eventually(t, 10*time.Second, "both settled", func() bool {
		return r.Stats().Applied.Load() == 1 && r.Stats().DeadLettered.Load() == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Type() != events.OrderPlacedV1 || events.StringExt(seen[0], events.ExtCausationID) != good.ID() {
		t.Fatalf("committed events = %v, want the good order's orders.placed only", seen)
	}
}

// setBased records each order command's id in one statement per batch and
// fails, in both paths, on one customer's commands.
type setBased struct {
	poison  string
	batches atomic.Int64
}

func (h *setBased) poisoned(ev *event.Event) bool {
	var in events.PlaceOrder
	_ = events.DecodeData(ev, &in)
	return in.CustomerID == h.poison
}

func (h *setBased) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	out, err := h.HandleBatch(ctx, tx, []runner.Msg{{Ctx: ctx, Event: ev}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (h *setBased) HandleBatch(ctx context.Context, tx pgx.Tx, msgs []runner.Msg) ([][]*event.Event, error) {
	if len(msgs) > 1 {
		h.batches.Add(1)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ev := m.Event
		if h.poisoned(ev) {
			return nil, runner.Permanent(errors.New("warehouse system rejects this customer"))
		}
		ids[i] = ev.ID()
	}
	if _, err := tx.Exec(ctx, `INSERT INTO set_based_effects (event_id) SELECT unnest($1::text[])`, ids); err != nil {
		return nil, err
	}
	return make([][]*event.Event, len(msgs)), nil
}

// TestAFailingMessageInASetBasedBatchRollsBackOnlyItself: the batch path
// fails as a whole, the savepoint path then applies every other message
// once and dead-letters the failing one.
func TestAFailingMessageInASetBasedBatchRollsBackOnlyItself(t *testing.T) {
	s := newSystem(t)
	if _, err := s.pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS set_based_effects (event_id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	purgeCommands(t, s.js)      // a fresh consumer reads the stream from its start
	run := uuid.NewString()[:8] // fresh names under -count=N
	prefix := "set-" + run
	h := &setBased{poison: prefix + "-poison"}
	var good []*event.Event
	for i := range 20 {
		e := placeOrder(t, fmt.Sprintf("%s-%d", prefix, i), 1)
		if i == 7 {
			e = placeOrder(t, h.poison, 1)
		} else {
			good = append(good, e)
		}
		publishRaw(t, s.js, e, e.ID())
	}
	// A redelivered copy is a duplicate, in the batch path as in the other.
	publishRaw(t, s.js, good[0], good[0].ID()+"-again")

	r, _ := s.start(ordersConsumer("set-based-orders-"+run), h)
	testenv.Eventually(t, 15*time.Second, "19 applied, 1 dead letter", func() bool {
		return r.Stats().Applied.Load() == int64(len(good)) && r.Stats().DeadLettered.Load() == 1
	})
	ids := make([]string, len(good))
	for i, e := range good {
		ids[i] = e.ID()
	}
	if n := s.count(`SELECT count(*) FROM set_based_effects WHERE event_id = ANY($1)`, ids); n != len(good) {
		t.Errorf("effects = %d, want %d (one per good message)", n, len(good))
	}
	if h.batches.Load() == 0 {
		t.Error("the set-based path never ran (all 21 messages were in the stream before the runner started)")
	}
}

// TestAMessageOnAnotherTypesSubjectIsDeadLettered: a place-order command
// smuggled onto the customers' subject is refused with the reason.
func TestAMessageOnAnotherTypesSubjectIsDeadLettered(t *testing.T) {
	s := newSystem(t)
	e := placeOrder(t, "smuggler-"+t.Name(), 1)
	m, err := cenats.NewMsg("cmd.customers.upsert", e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	cfg := ordersConsumer("smuggled-orders")
	cfg.FilterSubjects = []string{"cmd.customers.upsert"}
	r, _ := s.start(cfg, mustPlaceOrder(t))
	testenv.Eventually(t, 15*time.Second, "dead letter", func() bool { return r.Stats().DeadLettered.Load() == 1 })
	if n := s.count(`SELECT count(*) FROM orders.orders WHERE customer_id = $1`, "smuggler-"+t.Name()); n != 0 {
		t.Errorf("smuggled order placed: %d", n)
	}
	cons, err := s.js.CreateOrUpdateConsumer(context.Background(), broker.StreamDLQ, jetstream.ConsumerConfig{
		FilterSubject: runner.DeadLetterSubject("smuggled-orders", ">"),
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if reason := msg.Headers().Get(runner.HdrDLQReason); !strings.Contains(reason, "arrived on subject cmd.customers.upsert") {
		t.Errorf("reason %q does not name the subject", reason)
	}
}

// purgeCommands empties the COMMANDS stream of the package's server, so
// that a test counting what a new consumer applies sees only its own
// messages (the tests of a package share the server, also under -count=N).
func purgeCommands(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	st, err := js.Stream(context.Background(), broker.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
}
