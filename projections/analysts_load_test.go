package projections_test

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/loadgen"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/sagatest"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// loadTestMix is the default mix's classes but outage (its provider
// outage window must stay below the order deadline, which this test keeps
// short so that the timeout orders are cancelled within seconds), weighted
// so that 40 orders draw every class.
const loadTestMix = "happy=60,oos=10,decline=10,cancel=10,timeout=10"

// TestAnalystExamplesReturnRowsOnLoadData runs `tradewind load`'s own
// generator (internal/loadgen: its catalogue, customers and orders, with
// their names and today's times) against an in-process saga and the
// projections, then every example of docs/analysts.md, each of which must
// return at least one row: an analyst trying the page on a fresh `make
// run` plus `tradewind load` sees results, not empty tables.
func TestAnalystExamplesReturnRowsOnLoadData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the saga and the load generator; skipped in -short mode")
	}
	pool := testenv.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := sagatest.Start(t, sagatest.Options{Deadline: 3 * time.Second})
	// Empty read models, checkpoints at 0 (the system's stream is new),
	// and every projection live on it.
	e := &env{t: t, ctx: ctx, pool: pool, js: s.JS}
	e.reset()
	e.run(projections.All()...)
	mix, err := loadgen.ParseMix(loadTestMix)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := loadgen.New(loadgen.Config{Orders: 40, Mix: mix, Seed: 1, PaymentURL: s.Cfg.PaymentURL,
		Wait: time.Minute, SeedWait: time.Minute,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := gen.Run(ctx)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("load: %+v", sum)

	// Every projection has applied the whole stream as it stands now.
	st, err := s.JS.Stream(ctx, broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projections.All() {
		if _, err := projector.WaitFor(ctx, pool, p.Name(), info.State.LastSeq, 30*time.Second); err != nil {
			t.Fatalf("projection %s: %v", p.Name(), err)
		}
	}

	examples := analystExamples(t)
	names := make([]string, 0, len(examples))
	for name := range examples {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e := &env{t: t, ctx: e.ctx, pool: e.pool}
			rows := e.rows(examples[name])
			if len(rows) == 0 {
				t.Fatalf("no rows on the load's data:\n%s", examples[name])
			}
			t.Logf("%d rows, the first: %s", len(rows), rows[0])
		})
	}
}
