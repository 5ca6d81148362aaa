package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/idempotency"
)

// latencies collects per-request durations and reports throughput, p50
// and p99 next to ns/op.
type latencies struct {
	d []time.Duration
	n atomic.Int64
}

func newLatencies(n int) *latencies { return &latencies{d: make([]time.Duration, n)} }

func (l *latencies) add(d time.Duration) {
	if i := l.n.Add(1) - 1; int(i) < len(l.d) {
		l.d[i] = d
	}
}

func (l *latencies) report(b *testing.B, unit string) {
	d := l.d[:min(int(l.n.Load()), len(l.d))]
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(len(d))/b.Elapsed().Seconds(), unit+"/s")
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
}

// benchGateway is one gateway with four API keys (limits far above the
// load) and a client sized for the benchmark's concurrency.
type benchGateway struct {
	*gateway
	pool   *pgxpool.Pool
	keys   []string
	client *http.Client
	body   []byte
}

func newBenchGateway(b *testing.B, idemOpts ...idempotency.Option) *benchGateway {
	sys := newSystem(b)
	sys.idemOpts = idemOpts
	gw := sys.gateway()
	bg := &benchGateway{gateway: gw, pool: sys.pool, body: []byte(validOrder),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 1024}}}
	for i := range 4 {
		k, _, err := sys.keys.Create(context.Background(), auth.NewKeyInput{Name: fmt.Sprint("bench-", i), Scopes: []string{auth.ScopeOrdersWrite, auth.ScopeOrdersPrice}, RatePerSecond: 1e6, Burst: 1e6})
		if err != nil {
			b.Fatal(err)
		}
		bg.keys = append(bg.keys, k)
	}
	b.Cleanup(bg.client.CloseIdleConnections)
	return bg
}

// place sends one order with a fresh Idempotency-Key and fails the
// benchmark unless it is accepted.
func (g *benchGateway) place(b *testing.B, key string) bool {
	req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/v1/orders", bytes.NewReader(g.body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	res, err := g.client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		b.Errorf("status %d", res.StatusCode)
		return false
	}
	return true
}

// reportTrips reports the shared-store round trips per accepted command:
// rate-limit store calls (the rest were served from leases) and
// idempotency flushes (each carries many requests' writes).
func (g *benchGateway) reportTrips(b *testing.B, calls0, flushes0 int64, n int) {
	if n == 0 {
		return
	}
	b.ReportMetric(float64(g.lim.StoreCalls()-calls0)/float64(n), "kv-trips/cmd")
	b.ReportMetric(float64(g.idem.Flushes()-flushes0)/float64(n), "pg-trips/cmd")
}

// BenchmarkAcceptOrders measures POST /v1/orders end to end on loopback,
// closed loop: authentication, the shared rate limit (NATS KV), a fresh
// Idempotency-Key per request (PostgreSQL), schema validation and the
// durable JetStream ack, with 64 concurrent clients spread over 4 API
// keys. Client and gateway share the machine's cores. The sub-benchmark
// one-statement-per-write turns the idempotency store's group commit off,
// for comparison.
func BenchmarkAcceptOrders(b *testing.B) {
	b.Run("group-commit", func(b *testing.B) { benchAcceptOrders(b) })
	b.Run("one-statement-per-write", func(b *testing.B) { benchAcceptOrders(b, idempotency.WithFlushers(0)) })
}

func benchAcceptOrders(b *testing.B, idemOpts ...idempotency.Option) {
	g := newBenchGateway(b, idemOpts...)
	lat := newLatencies(b.N)
	var worker atomic.Int64
	calls0, flushes0 := g.lim.StoreCalls(), g.idem.Flushes()
	cpu := startCPU(g.pool)
	b.SetParallelism(32) // 64 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := g.keys[int(worker.Add(1))%len(g.keys)]
		for pb.Next() {
			start := time.Now()
			if !g.place(b, key) {
				return
			}
			lat.add(time.Since(start))
		}
	})
	b.StopTimer()
	cpu.report(b, int(lat.n.Load()))
	lat.report(b, "cmds")
	g.reportTrips(b, calls0, flushes0, int(lat.n.Load()))
}

// BenchmarkAcceptOrdersAt5k is the open-loop, fixed-rate run: commands
// are sent on a schedule of 5,000 per second whatever the answers'
// latency (each on its own goroutine), and a command's latency is counted
// from its scheduled time, so a stalled gateway shows as latency instead
// of a slower schedule (no coordinated omission). b.N sets the duration
// (-benchtime=15000x is three seconds).
func BenchmarkAcceptOrdersAt5k(b *testing.B) {
	const rate = 5000
	g := newBenchGateway(b)
	// Warm the connection pool and the leases so that the schedule does
	// not start with connection setup.
	var warm sync.WaitGroup
	for i := range 64 {
		warm.Go(func() { g.place(b, g.keys[i%len(g.keys)]) })
	}
	warm.Wait()
	lat := newLatencies(b.N)
	calls0, flushes0 := g.lim.StoreCalls(), g.idem.Flushes()
	cpu := startCPU(g.pool)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		at := start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			if g.place(b, g.keys[i%len(g.keys)]) {
				lat.add(time.Since(at))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu.report(b, int(lat.n.Load()))
	lat.report(b, "cmds")
	g.reportTrips(b, calls0, flushes0, int(lat.n.Load()))
}

// BenchmarkRawPublish is the baseline of the same run: the same command
// published straight to JetStream, waiting for each ack (sync: one
// publisher, as `nats bench js pub sync`; sync-64: 64 concurrent
// publishers) or pipelining with async publishes (async, at most 1,024
// unacknowledged).
func BenchmarkRawPublish(b *testing.B) {
	sys := newSystem(b)
	ev, err := events.New(events.PlaceOrderV2, "o-1", []byte(validOrder))
	if err != nil {
		b.Fatal(err)
	}
	h, data, err := cenats.Encode(context.Background(), ev)
	if err != nil {
		b.Fatal(err)
	}
	msg := func() *nats.Msg {
		m := nats.NewMsg("cmd.orders.place")
		for k, v := range h {
			m.Header[k] = v
		}
		m.Header.Set(nats.MsgIdHdr, uuid.NewString())
		m.Data = data
		return m
	}
	b.Run("sync", func(b *testing.B) {
		lat := newLatencies(b.N)
		for range b.N {
			start := time.Now()
			if _, err := sys.js.PublishMsg(context.Background(), msg()); err != nil {
				b.Fatal(err)
			}
			lat.add(time.Since(start))
		}
		lat.report(b, "msgs")
	})
	b.Run("sync-64", func(b *testing.B) {
		lat := newLatencies(b.N)
		cpu := startCPU(sys.pool)
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := time.Now()
				if _, err := sys.js.PublishMsg(context.Background(), msg()); err != nil {
					b.Error(err)
					return
				}
				lat.add(time.Since(start))
			}
		})
		cpu.report(b, b.N)
		lat.report(b, "msgs")
	})
	b.Run("async", func(b *testing.B) {
		nc, err := nats.Connect(sys.emb.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := js.PublishMsgAsync(msg(), jetstream.WithExpectStream("COMMANDS"), jetstream.WithStallWait(10*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("async acks did not complete")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
