package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/cenats"
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

// BenchmarkAcceptOrders measures POST /v1/orders end to end on loopback:
// authentication, the shared rate limit (NATS KV), a fresh Idempotency-Key
// per request (PostgreSQL), schema validation and the durable JetStream
// ack, with 64 concurrent clients spread over 4 API keys. Client and
// gateway share the machine's cores.
func BenchmarkAcceptOrders(b *testing.B) {
	sys := newSystem(b)
	gw := sys.gateway()
	var keys []string
	for i := range 4 {
		k, _, err := sys.keys.Create(context.Background(), auth.NewKeyInput{Name: fmt.Sprint("bench-", i), Scopes: []string{auth.ScopeOrdersWrite}, RatePerSecond: 1e6, Burst: 1e6})
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
	body := []byte(validOrder)
	lat := newLatencies(b.N)
	var worker atomic.Int64
	b.SetParallelism(32) // 64 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := keys[int(worker.Add(1))%len(keys)]
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, gw.http.URL+"/v1/orders", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", uuid.NewString())
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = res.Body.Read(make([]byte, 512))
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", res.StatusCode)
				return
			}
			lat.add(time.Since(start))
		}
	})
	b.StopTimer()
	lat.report(b, "cmds")
}

// BenchmarkRawPublish is the baseline of the same run: the same command
// published straight to JetStream, waiting for each ack (sync: one
// publisher, as `nats bench js pub sync`; sync-64: 64 concurrent
// publishers) or pipelining with async publishes (async).
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
		lat.report(b, "msgs")
	})
	b.Run("async", func(b *testing.B) {
		for range b.N {
			if _, err := sys.js.PublishMsgAsync(msg(), jetstream.WithExpectStream("COMMANDS")); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-sys.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("async acks did not complete")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
