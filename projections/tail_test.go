package projections_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// statements records how the statements of a pool were sent: alone (one
// round trip each) or in a pipelined batch.
type statements struct {
	mu             sync.Mutex
	alone, batched []string
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alone = append(s.alone, d.SQL)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (s *statements) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batched = append(s.batched, d.SQL)
}
func (s *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (s *statements) count(alone bool, fragment string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.batched
	if alone {
		list = s.alone
	}
	n := 0
	for _, q := range list {
		if strings.Contains(q, fragment) {
			n++
		}
	}
	return n
}

// The live group advances its members' checkpoints in one pipelined round
// trip at the end of each batch, not one statement per member.
func TestGroupAdvancesEveryCheckpointInOneRoundTrip(t *testing.T) {
	e := newEnv(t)
	trace := &statements{}
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = trace
	pool, err := pgxpool.NewWithConfig(e.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	g, err := projector.NewGroup(projections.All(), e.js, pool, projector.GroupConfig{BatchSize: 50}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	seq := e.placed(uuid.NewString(), "c-tail", events.OrderLine{SKU: "SKU-T", Quantity: 1, UnitPrice: 500})
	for _, p := range projections.All() {
		e.waitFor(p, seq)
	}
	const advance = "UPDATE public.projection_checkpoints SET last_seq"
	if n := trace.count(true, advance); n != 0 {
		t.Errorf("%d checkpoint advances sent alone, want every one in the batch's tail", n)
	}
	if n := trace.count(false, advance); n < len(projections.All()) {
		t.Errorf("%d checkpoint advances sent in a tail, want at least one per member (%d)", n, len(projections.All()))
	}
}
