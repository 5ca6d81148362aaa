package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// Ceiling is the machine's limit for the saga's work, from raw rates
// measured in the same run on the same servers: JetStream publish and
// consume (file storage, acks as Tradewind's consumers give them) and
// PostgreSQL COPY of rows as wide as Tradewind's.
type Ceiling struct {
	PublishPerSec     float64 `json:"publish_per_sec"`
	ConsumePerSec     float64 `json:"consume_per_sec"`
	MsgBytes          int     `json:"msg_bytes"`
	CopyRowsPerSec    float64 `json:"copy_rows_per_sec"`
	RowBytes          int     `json:"row_bytes"`
	PublishesPerOrder float64 `json:"publishes_per_order"`
	DeliveriesPerOrd  float64 `json:"deliveries_per_order"`
	RowsPerOrder      float64 `json:"rows_per_order"`
	NATSOrdersPerSec  float64 `json:"nats_orders_per_sec"`
	PGOrdersPerSec    float64 `json:"pg_orders_per_sec"`
	OrdersPerSec      float64 `json:"orders_per_sec"` // both on the same cores: the times add

	TopTables []TableRate `json:"top_tables,omitempty"` // rows written per order, most first
}

// TableRate is the rows one table had written per completed order.
type TableRate struct {
	Table        string  `json:"table"`
	RowsPerOrder float64 `json:"rows_per_order"`
}

// estimate fills the per-order ceilings from the rates and the counts.
func (c *Ceiling) estimate() {
	natsSec := 0.0
	if c.PublishPerSec > 0 && c.ConsumePerSec > 0 {
		natsSec = c.PublishesPerOrder/c.PublishPerSec + c.DeliveriesPerOrd/c.ConsumePerSec
	}
	pgSec := 0.0
	if c.CopyRowsPerSec > 0 {
		pgSec = c.RowsPerOrder / c.CopyRowsPerSec
	}
	if natsSec > 0 {
		c.NATSOrdersPerSec = 1 / natsSec
	}
	if pgSec > 0 {
		c.PGOrdersPerSec = 1 / pgSec
	}
	if natsSec+pgSec > 0 {
		c.OrdersPerSec = 1 / (natsSec + pgSec)
	}
}

// natsRates publishes n messages of size bytes to a file-stored stream of
// its own, each awaiting JetStream's ack (asynchronously, up to 512 in
// flight, as a relay does), then consumes them from a durable pull
// consumer acknowledging each one, as `nats bench js` does.
func natsRates(ctx context.Context, js jetstream.JetStream, n, size int) (pub, sub float64, err error) {
	const name = "BENCHSAGA"
	_ = js.DeleteStream(ctx, name)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"benchsaga.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, 0, fmt.Errorf("create stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	body := []byte(strings.Repeat("x", size))
	start := time.Now()
	inflight := make(chan struct{}, 512)
	var wg sync.WaitGroup
	var pubErr error
	var mu sync.Mutex
	for i := range n {
		inflight <- struct{}{}
		f, err := js.PublishAsync(fmt.Sprintf("benchsaga.%d", i%64), body)
		if err != nil {
			return 0, 0, fmt.Errorf("publish: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			select {
			case <-f.Ok():
			case err := <-f.Err():
				mu.Lock()
				pubErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if pubErr != nil {
		return 0, 0, fmt.Errorf("publish ack: %w", pubErr)
	}
	pub = float64(n) / time.Since(start).Seconds()

	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return pub, 0, fmt.Errorf("create consumer: %w", err)
	}
	start = time.Now()
	got := 0
	for got < n {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return pub, 0, fmt.Errorf("fetch: %w", err)
		}
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				return pub, 0, fmt.Errorf("ack: %w", err)
			}
			got++
		}
		if batch.Error() != nil {
			return pub, 0, fmt.Errorf("fetch: %w", batch.Error())
		}
	}
	return pub, float64(n) / time.Since(start).Seconds(), nil
}

// tableRows is how many rows one table had written.
type tableRows struct {
	name string
	n    int64
}

// rowsWritten reads from the statistics of Tradewind's database how many
// rows it wrote (inserted, updated or deleted: each writes a tuple or
// marks one, and WAL), by table (most first), and how wide they are on
// average.
func (s *stack) rowsWritten(ctx context.Context) (rows int64, avgBytes int, tbls []tableRows, err error) {
	type tbl = tableRows
	r, err := s.pool.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(relname), n_tup_ins + n_tup_upd + n_tup_del
		FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY 2 DESC`)
	if err != nil {
		return 0, 0, nil, err
	}
	for r.Next() {
		var t tbl
		if err := r.Scan(&t.name, &t.n); err != nil {
			r.Close()
			return 0, 0, nil, err
		}
		tbls = append(tbls, t)
	}
	r.Close()
	var weighted float64
	var sized int64
	for _, t := range tbls {
		rows += t.n
		var w *float64
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT avg(pg_column_size(t.*)) FROM (SELECT * FROM %s LIMIT 1000) t`, t.name)).Scan(&w); err == nil && w != nil {
			weighted += *w * float64(t.n)
			sized += t.n
		}
	}
	if sized > 0 {
		avgBytes = int(weighted / float64(sized))
	}
	return rows, avgBytes, tbls, nil
}

// copyRate COPYs n rows of width bytes into a logged table with a primary
// key and an index on the order id (as Tradewind's tables have), in
// batches of 1,000 rows per transaction on two connections, and returns
// rows/s.
func (s *stack) copyRate(ctx context.Context, n, width int) (float64, error) {
	if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS bench_copy;
		CREATE TABLE bench_copy (id bigint PRIMARY KEY, order_id uuid NOT NULL, body bytea NOT NULL);
		CREATE INDEX ON bench_copy (order_id)`); err != nil {
		return 0, fmt.Errorf("create bench_copy: %w", err)
	}
	defer func() { _, _ = s.pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench_copy`) }()
	body := make([]byte, max(width-40, 8))
	const batch, workers = 1000, 2
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w; b*batch < n; b += workers {
				rows := make([][]any, 0, batch)
				for i := b * batch; i < min((b+1)*batch, n); i++ {
					var u [16]byte
					u[0], u[1], u[2], u[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
					u[15] = byte(i / 6)
					rows = append(rows, []any{int64(i), u, body})
				}
				if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"bench_copy"}, []string{"id", "order_id", "body"}, pgx.CopyFromRows(rows)); err != nil {
					errs <- fmt.Errorf("copy: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
