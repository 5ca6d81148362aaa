package runner_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cloudevents/sdk-go/v2/event"
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
	"github.com/tradewind/tradewind/schemas"
)

// benchCommands is how many PlaceOrder commands one iteration consumes.
const benchCommands = 2000

// BenchmarkPlaceOrderSlice measures the order slice (PlaceOrder command →
// order row + outbox event, exactly once) through Tradewind's runner and
// through the baseline: the same work done the plain Watermill way (router,
// one transaction per message, the same inbox and outbox tables), in the
// same run against the same NATS and PostgreSQL. Compare the msgs/s metric.
//
//	go test -run=NONE -bench=PlaceOrderSlice -benchtime=3x ./internal/runner
func BenchmarkPlaceOrderSlice(b *testing.B) {
	pool := testenv.Pool(b)
	place, err := orders.NewPlaceOrder(time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		run  func(ctx context.Context, b *testing.B, nc *nats.Conn, js jetstream.JetStream, consumer string, done *atomic.Int64)
	}{
		{"runner", func(ctx context.Context, b *testing.B, _ *nats.Conn, js jetstream.JetStream, consumer string, done *atomic.Int64) {
			r, err := runner.New(runner.Config{Name: consumer, Stream: broker.StreamCommands,
				FilterSubjects: []string{"cmd.orders.place"}}, js, pool, runner.HandlerFunc(
				func(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
					out, err := place.Handle(ctx, tx, ev)
					done.Add(1)
					return out, err
				}))
			if err != nil {
				b.Fatal(err)
			}
			_ = r.Run(ctx)
		}},
		{"watermill-baseline", func(ctx context.Context, b *testing.B, nc *nats.Conn, js jetstream.JetStream, consumer string, done *atomic.Int64) {
			runWatermillBaseline(ctx, b, nc, js, pool, place, consumer, done)
		}},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				_, nc, js := testenv.JetStream(b)
				prepublish(b, js, benchCommands)
				consumer := fmt.Sprintf("bench-%s-%d-%d", impl.name, i, time.Now().UnixNano())
				var done atomic.Int64
				ctx, cancel := context.WithCancel(context.Background())
				stopped := make(chan struct{})
				b.StartTimer()
				start := time.Now()
				go func() { defer close(stopped); impl.run(ctx, b, nc, js, consumer, &done) }()
				for done.Load() < benchCommands {
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				cancel()
				<-stopped
			}
			b.ReportMetric(float64(benchCommands*b.N)/total.Seconds(), "msgs/s")
		})
	}
}

func prepublish(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
			CustomerID: fmt.Sprintf("bench-%d", i%100), Currency: "EUR",
			Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
		})
		if err != nil {
			b.Fatal(err)
		}
		m, err := cenats.NewMsg("cmd.orders.place", e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatal("prepublish: acks did not arrive")
	}
	_ = ctx
}

// runWatermillBaseline is the slice written the way a Watermill user would:
// a router with the recoverer middleware, a JetStream subscriber, and a
// handler that opens one transaction per message for inbox, effect and
// outbox.
func runWatermillBaseline(ctx context.Context, b *testing.B, nc *nats.Conn, js jetstream.JetStream, pool *pgxpool.Pool,
	place runner.Handler, consumer string, done *atomic.Int64) {
	logger := watermill.NopLogger{}
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:   nc,
		Logger: logger,
		ResourceInitializer: func(ctx context.Context, js jetstream.JetStream, topic string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
			c, err := js.CreateOrUpdateConsumer(ctx, broker.StreamCommands, jetstream.ConsumerConfig{
				Durable: consumer, FilterSubject: topic, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5,
			})
			return c, nil, err
		},
		AckAsync:    true,
		Unmarshaler: cloudEventUnmarshaler{},
	})
	if err != nil {
		b.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		b.Fatal(err)
	}
	router.AddMiddleware(middleware.Recoverer)
	router.AddConsumerHandler("place-order", "cmd.orders.place", sub, func(msg *message.Message) error {
		h := nats.Header{}
		for k, v := range msg.Metadata {
			h.Set(k, v)
		}
		ev, err := cenats.Decode(h, msg.Payload)
		if err != nil {
			return err
		}
		if err := schemas.ValidateEvent(ev); err != nil {
			return err
		}
		tx, err := pool.Begin(msg.Context())
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		tag, err := tx.Exec(msg.Context(), `INSERT INTO core.inbox (consumer, event_id, event_type, stream_seq) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING`,
			consumer, ev.ID(), ev.Type())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			out, err := place.Handle(msg.Context(), tx, ev)
			if err != nil {
				return err
			}
			if err := outbox.Add(msg.Context(), tx, out...); err != nil {
				return err
			}
		}
		if err := tx.Commit(msg.Context()); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	go func() { <-ctx.Done(); _ = router.Close() }()
	if err := router.Run(ctx); err != nil && ctx.Err() == nil {
		b.Error(err)
	}
}

// cloudEventUnmarshaler keeps a CloudEvent's NATS headers as Watermill
// metadata and its id as the message UUID.
type cloudEventUnmarshaler struct{}

func (cloudEventUnmarshaler) Unmarshal(m jetstream.Msg) (*message.Message, error) {
	md := message.Metadata{}
	for k, v := range m.Headers() {
		if len(v) > 0 {
			md.Set(k, v[0])
		}
	}
	wm := message.NewMessage(m.Headers().Get("ce-id"), m.Data())
	wm.Metadata = md
	return wm, nil
}
