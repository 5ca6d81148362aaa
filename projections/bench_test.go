package projections_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// benchSize reads an event/row count from the environment (default def),
// so `make test` stays fast and a full run is one variable away:
//
//	TRADEWIND_BENCH_EVENTS=1000000 go test -run '^$' -bench RebuildOrders ./projections/
func benchSize(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkRebuildOrders replays a realistic order-saga stream (see
// newSagaStream: the load generator's default mix of paths, every event
// the handlers emit, interleaved in time order; >= N events, N =
// TRADEWIND_BENCH_EVENTS, default 20000) from JetStream into a new version
// of the orders projection, checks the result against the rows the stream
// must produce, and, in the same run, COPYs exactly those final rows into
// a fresh table of the same shape (LIKE the template, indexes included).
//
// The baseline is the cheapest way to arrive at the same table: the
// rebuild reads ~5.6 events per order and folds them, COPY only writes the
// end result. So the ratio compares times for the same rows,
// copy-time / rebuild-time (equivalently orders/s against copy-rows/s);
// comparing events/s with rows/s would credit the rebuild with folding.
func BenchmarkRebuildOrders(b *testing.B) {
	n := benchSize("TRADEWIND_BENCH_EVENTS", 20000)
	_, _, js := testenv.JetStream(b)
	pool := testenv.Pool(b)
	ctx := context.Background()
	s, err := newSagaStream(n)
	if err != nil {
		b.Fatal(err)
	}
	type inflight struct {
		f jetstream.PubAckFuture
		e sagaEvent
	}
	var pending []inflight
	settle := func() {
		<-js.PublishAsyncComplete()
		for _, p := range pending {
			select {
			case ack := <-p.f.Ok():
				s.expect(p.e, ack.Sequence)
			case err := <-p.f.Err():
				b.Fatal(err)
			}
		}
		pending = pending[:0]
	}
	for _, e := range s.events {
		typ, data := s.payload(e)
		ev, err := events.New(typ, s.orders[e.order].id.String(), data, events.WithTime(e.at()))
		if err != nil {
			b.Fatal(err)
		}
		subj, err := events.NATSSubject(ev)
		if err != nil {
			b.Fatal(err)
		}
		msg, err := cenats.NewMsg(subj, ev)
		if err != nil {
			b.Fatal(err)
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			b.Fatal(err)
		}
		pending = append(pending, inflight{f, e})
		if len(pending) == 4000 {
			settle()
		}
	}
	settle()
	pending = nil
	b.Logf("stream: %s", s.summary())
	cols := []string{"order_id", "customer_id", "status", "currency", "total", "item_count", "lines",
		"stock_status", "payment_status", "authorization_id", "cancel_reason",
		"placed_at", "deadline", "confirmed_at", "cancelled_at", "updated_at", "last_seq"}
	b.ResetTimer()
	var rebuild, copying time.Duration
	var applied int
	var rows [][]any
	for range b.N {
		runtime.GC() // publishing's garbage is not the rebuild's to collect
		stopProfile := profileRebuild(b)
		res, err := projector.Rebuild(ctx, pool, js, projections.Orders{}, projector.RebuildOptions{})
		stopProfile()
		if err != nil {
			b.Fatal(err)
		}
		rebuild, applied = res.Took, res.Events

		if rows, err = s.rows(); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS proj.bench_copy; CREATE TABLE proj.bench_copy (LIKE proj.orders_tmpl INCLUDING ALL)`); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"proj", "bench_copy"}, cols, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
		copying = time.Since(t0)
	}
	b.StopTimer()
	// The rebuilt version (now behind the view) holds exactly the rows the
	// baseline copied.
	var missing, extra int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM (TABLE proj.bench_copy EXCEPT ALL TABLE public.orders) a),
		(SELECT count(*) FROM (TABLE public.orders EXCEPT ALL TABLE proj.bench_copy) b)`).Scan(&missing, &extra); err != nil {
		b.Fatal(err)
	}
	if missing != 0 || extra != 0 || applied != len(s.events) {
		b.Fatalf("rebuild differs from the expected read model: %d rows missing, %d unexpected; %d of %d events applied",
			missing, extra, applied, len(s.events))
	}
	eventRate := float64(len(s.events)) / rebuild.Seconds()
	orderRate := float64(len(rows)) / rebuild.Seconds()
	copyRate := float64(len(rows)) / copying.Seconds()
	b.ReportMetric(eventRate, "events/s")
	b.ReportMetric(orderRate, "orders/s")
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(copying.Seconds()/rebuild.Seconds(), "ratio")
	b.Logf("%d events -> %d orders: rebuild %v (%.0f events/s, %.0f orders/s), raw COPY of the same %d rows %v (%.0f rows/s); "+
		"ratio (copy time / rebuild time) %.2f; events/s per COPY row/s %.2f",
		len(s.events), len(rows), rebuild.Round(time.Millisecond), eventRate, orderRate, len(rows), copying.Round(time.Millisecond), copyRate,
		copying.Seconds()/rebuild.Seconds(), eventRate/copyRate)
	_, _ = pool.Exec(ctx, `DROP TABLE IF EXISTS proj.bench_copy`)
}

// profileRebuild starts a CPU profile of the benchmark process into the
// file TRADEWIND_BENCH_CPUPROFILE names, if set, and returns its stop:
// unlike -cpuprofile it leaves out publishing the stream.
func profileRebuild(b *testing.B) (stop func()) {
	path := os.Getenv("TRADEWIND_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkReadLatency fills the live orders table with 10k and then N
// (default 100k; TRADEWIND_BENCH_ORDERS=1000000 for the full figure)
// orders and prints p50/p99 of GET /v1/orders/{id} and of a keyset page
// far down one customer's orders, through the HTTP handler.
func BenchmarkReadLatency(b *testing.B) {
	pool := testenv.Pool(b)
	ctx := context.Background()
	cp, err := projector.LiveCheckpoint(ctx, pool, "orders")
	if err != nil {
		b.Fatal(err)
	}
	table := projector.PhysicalTable("orders", cp.Version)
	api, err := readapi.New(readapi.Config{Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	for _, size := range []int{10000, benchSize("TRADEWIND_BENCH_ORDERS", 100000)} {
		if _, err := pool.Exec(ctx, `TRUNCATE `+table); err != nil {
			b.Fatal(err)
		}
		// 100 customers; ids are deterministic so the benchmark can pick some.
		if _, err := pool.Exec(ctx, `INSERT INTO `+table+` (order_id, customer_id, status, currency, total, item_count, lines, placed_at, deadline, updated_at, last_seq)
			SELECT ('00000000-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, 'c-' || (g % 100), 'pending', 'EUR', 100, 1, '[]',
			       '2026-01-01'::timestamptz + g * interval '1 second', '2026-01-02', now(), g
			FROM generate_series(1, $1) g`, size); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ANALYZE `+table); err != nil {
			b.Fatal(err)
		}
		// A cursor deep down customer c-7's orders: 90% of the way.
		deep := fmt.Sprintf("00000000-0000-7000-8000-%012d", size/10/100*100+7)
		var cur string
		{
			var placed time.Time
			if err := pool.QueryRow(ctx, `SELECT placed_at FROM `+table+` WHERE order_id = $1`, deep).Scan(&placed); err != nil {
				b.Fatal(err)
			}
			c, _ := json.Marshal(map[string]any{"t": placed, "id": deep})
			cur = base64URL(c)
		}
		measure := func(path func(i int) string) (p50, p99 time.Duration) {
			const reqs = 2000
			d := make([]time.Duration, reqs)
			for i := range reqs {
				req := httptest.NewRequest("GET", path(i), nil)
				w := httptest.NewRecorder()
				t0 := time.Now()
				mux.ServeHTTP(w, req)
				d[i] = time.Since(t0)
				if w.Code != 200 {
					b.Fatalf("GET %s: %d %s", req.URL, w.Code, w.Body)
				}
			}
			slices.Sort(d)
			return d[reqs/2], d[reqs*99/100]
		}
		g50, g99 := measure(func(i int) string {
			return fmt.Sprintf("/v1/orders/00000000-0000-7000-8000-%012d", 1+(i*7919)%size)
		})
		k50, k99 := measure(func(int) string { return "/v1/orders?customer_id=c-7&limit=20&cursor=" + cur })
		b.Logf("%8d orders: GET /v1/orders/{id} p50 %v p99 %v; deep keyset page p50 %v p99 %v", size, g50, g99, k50, k99)
		b.ReportMetric(float64(g99.Microseconds()), fmt.Sprintf("get-p99-us@%d", size))
		b.ReportMetric(float64(k99.Microseconds()), fmt.Sprintf("page-p99-us@%d", size))
	}
	_, _ = pool.Exec(ctx, `TRUNCATE `+table)
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
