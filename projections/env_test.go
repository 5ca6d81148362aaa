package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one test's system: its own JetStream and the package's database,
// with every read model emptied and its checkpoint at 0 (the tests of this
// package share the database, so they do not run in parallel).
type env struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	js   jetstream.JetStream
	at   time.Time // event time of the next published event
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, pool: pool, js: js, at: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	e.reset()
	return e
}

func (e *env) reset() {
	e.t.Helper()
	for _, p := range projections.All() {
		cp, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, tb := range p.Tables() {
			e.exec(`TRUNCATE ` + projector.PhysicalTable(tb, cp.Version))
		}
		e.exec(`UPDATE public.projection_checkpoints SET last_seq = 0, lag = 0, stream_created = NULL WHERE name = $1`, p.Name())
	}
	e.exec(`DELETE FROM public.projection_rejects`)
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// publish puts an event on EVENTS (validated against its schema) one
// minute after the previous one, and returns its stream sequence.
func (e *env) publish(ceType, subject string, data any) uint64 {
	e.t.Helper()
	e.at = e.at.Add(time.Minute)
	ev, err := events.New(ceType, subject, data, events.WithTime(e.at))
	if err != nil {
		e.t.Fatal(err)
	}
	ack, err := broker.Publish(e.ctx, e.js, ev)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// run starts a live group of ps until stop is called or the test ends.
func (e *env) run(ps ...projector.Projection) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	g, err := projector.NewGroup(ps, e.js, e.pool, projector.GroupConfig{BatchSize: 50}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// waitFor waits until p's live version reached seq.
func (e *env) waitFor(p projector.Projection, seq uint64) {
	e.t.Helper()
	if _, err := projector.WaitFor(e.ctx, e.pool, p.Name(), seq, 20*time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// rows returns a query's rows as JSON objects, one string each.
func (e *env) rows(sql string, args ...any) []string {
	e.t.Helper()
	rs, err := e.pool.Query(e.ctx, `SELECT to_jsonb(q)::text FROM (`+sql+`) q`, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// one returns a single-row query's columns.
func (e *env) one(sql string, args ...any) map[string]any {
	e.t.Helper()
	rs := e.rows(sql, args...)
	if len(rs) != 1 {
		e.t.Fatalf("%s: %d rows, want 1: %v", sql, len(rs), rs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(rs[0]), &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func uuidFor(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", n) }
