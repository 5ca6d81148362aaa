package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers/orders"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func placeOrder(t *testing.T, customer string) *event.Event {
	t.Helper()
	e, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		CustomerID: customer, Currency: "EUR",
		Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
	}, events.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// flaky fails the first delivery of customer "retry" and every delivery
// of customer "poison" (permanently). It decides by delivery attempt, not
// by call count: the runner may call a handler twice for one delivery.
type flaky struct {
	next runner.Handler
}

func (f *flaky) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	var in events.PlaceOrder
	_ = events.DecodeData(ev, &in)
	d, _ := runner.DeliveryFrom(ctx)
	switch {
	case strings.HasSuffix(in.CustomerID, "-poison"):
		return nil, runner.Permanent(errors.New("rejected"))
	case strings.HasSuffix(in.CustomerID, "-retry") && d.NumDelivered == 1:
		return nil, errors.New("warehouse briefly down")
	}
	return f.next.Handle(ctx, tx, ev)
}

func scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestConsumerAndOutboxSeriesMove runs a consumer and the relay with their
// observers and the poller, then checks the key series on /metrics moved:
// lag before consumption, results, redeliveries, dead letters, latency
// histograms, outbox publishes, DLQ size.
func TestConsumerAndOutboxSeriesMove(t *testing.T) {
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumer := "metrics-orders-" + uuid.NewString()[:8] // fresh series under -count=N

	for _, c := range []string{"m-good", "m-retry", "m-poison"} {
		c = consumer + "-" + c
		if _, err := broker.Publish(ctx, js, placeOrder(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	place, err := orders.NewPlaceOrder(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(runner.Config{
		Name: consumer, Stream: broker.StreamCommands, FilterSubjects: []string{"cmd.orders.place"},
		MaxDeliver: 3, Backoff: func(int) time.Duration { return 20 * time.Millisecond },
	}, js, pool, &flaky{next: place}, runner.WithObserver(metrics.ConsumerObserver{}))
	if err != nil {
		t.Fatal(err)
	}
	poller, err := metrics.NewPoller(metrics.PollerConfig{
		JS: js, Pool: pool, Consumers: []metrics.ConsumerRef{{Stream: broker.StreamCommands, Name: consumer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The durable consumer exists before the runner starts, so the lag is
	// visible first.
	if _, err := broker.EnsureConsumer(ctx, js, r.Spec()); err != nil {
		t.Fatal(err)
	}
	if err := poller.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := value(t, metrics.ConsumerPending.WithLabelValues(consumer, broker.StreamCommands)); got != 3 {
		t.Errorf("pending before consuming = %v, want 3", got)
	}

	relay, err := outbox.NewRelay(outbox.RelayConfig{Sweep: 50 * time.Millisecond, Observe: metrics.ObserveOutboxPublish}, pool, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	published := value(t, metrics.OutboxPublished)
	done := make(chan struct{}, 2)
	go func() { _ = relay.Run(ctx); done <- struct{}{} }()
	go func() { _ = r.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	testenv.Eventually(t, 15*time.Second, "two applied, one dead letter", func() bool {
		return r.Stats().Applied.Load() == 2 && r.Stats().DeadLettered.Load() == 1
	})
	testenv.Eventually(t, 10*time.Second, "outbox relayed", func() bool {
		return value(t, metrics.OutboxPublished)-published >= 2
	})
	testenv.Eventually(t, 10*time.Second, "acks settled", func() bool {
		if err := poller.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		// The relay deletes a round's rows after their acks, so the
		// backlog reaches 0 a moment after the publish counter moved.
		return value(t, metrics.ConsumerPending.WithLabelValues(consumer, broker.StreamCommands)) == 0 &&
			value(t, metrics.ConsumerAckPending.WithLabelValues(consumer, broker.StreamCommands)) == 0 &&
			value(t, metrics.OutboxBacklog) == 0
	})

	checks := []struct {
		name string
		got  float64
		want func(float64) bool
	}{
		{"applied", value(t, metrics.ConsumerMessages.WithLabelValues(consumer, metrics.ResultApplied)), eq(2)},
		{"retried", value(t, metrics.ConsumerMessages.WithLabelValues(consumer, metrics.ResultRetried)), eq(1)},
		{"dead lettered", value(t, metrics.ConsumerMessages.WithLabelValues(consumer, metrics.ResultDeadLettered)), eq(1)},
		{"redeliveries", value(t, metrics.ConsumerRedeliveries.WithLabelValues(consumer)), eq(1)},
		{"dead letters", value(t, metrics.ConsumerDeadLetters.WithLabelValues(consumer)), eq(1)},
		{"fallbacks", value(t, metrics.ConsumerFallbacks.WithLabelValues(consumer)), func(v float64) bool { return v >= 1 }},
		{"dlq size", value(t, metrics.DLQMessages.WithLabelValues(consumer)), eq(1)},
		{"outbox backlog", value(t, metrics.OutboxBacklog), eq(0)},
	}
	for _, c := range checks {
		if !c.want(c.got) {
			t.Errorf("%s = %v", c.name, c.got)
		}
	}

	body := scrape(t)
	for _, series := range []string{
		`tradewind_consumer_batch_size_count{consumer="` + consumer + `"}`,
		`tradewind_consumer_batch_duration_seconds_bucket{consumer="` + consumer + `"`,
		`tradewind_consumer_processing_seconds_count{consumer="` + consumer + `"}`,
		`tradewind_consumer_pending{consumer="` + consumer + `",stream="COMMANDS"} 0`,
		`tradewind_dlq_messages{consumer="` + consumer + `"} 1`,
		`tradewind_outbox_publish_seconds_count`,
		`tradewind_outbox_backlog 0`,
		`tradewind_table_dead_tuples{table="core.outbox"}`,
		`tradewind_table_live_tuples{table="orders.orders"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// value reads a counter's or gauge's current value (prometheus/testutil
// would need a module this repository does not carry).
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	m, ok := <-ch
	if !ok {
		t.Fatal("collector has no metric")
	}
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

func eq(want float64) func(float64) bool { return func(got float64) bool { return got == want } }

func TestHTTPMiddlewareLabelsByRoutePattern(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /test/orders/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("POST /test/orders", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(metrics.HTTP(mux))
	defer srv.Close()

	tests := []struct {
		method, path string
		route, code  string
	}{
		{http.MethodGet, "/test/orders/1", "GET /test/orders/{id}", "200"},
		{http.MethodGet, "/test/orders/2", "GET /test/orders/{id}", "200"},
		{http.MethodPost, "/test/orders", "POST /test/orders", "500"},
		{http.MethodGet, "/nowhere/42", metrics.UnmatchedRoute, "404"},
	}
	before := map[[3]string]float64{}
	for _, tt := range tests {
		k := [3]string{tt.route, tt.method, tt.code}
		before[k] = value(t, metrics.HTTPRequests.WithLabelValues(k[:]...))
	}
	want := map[[3]string]float64{}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		want[[3]string{tt.route, tt.method, tt.code}]++
	}
	for k, n := range want {
		if got := value(t, metrics.HTTPRequests.WithLabelValues(k[:]...)) - before[k]; got != n {
			t.Errorf("requests%v = %v, want %v", k, got, n)
		}
	}
	if strings.Contains(scrape(t), "/nowhere/42") {
		t.Error("a raw path became a label value")
	}
}

func TestHTTPMiddlewareKeepsHijacking(t *testing.T) {
	h := metrics.HTTP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack through the middleware: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n")
		_ = rw.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d, want 101", resp.StatusCode)
	}
}

func TestDomainRecorders(t *testing.T) {
	run := uuid.NewString()[:8]
	tests := []struct {
		name string
		do   func()
		got  func(t *testing.T) float64
		want float64
	}{
		{"partitions held", func() { metrics.SetPartitionsHeld("t-orders-"+run, 3) },
			func(t *testing.T) float64 { return value(t, metrics.PartitionsHeld.WithLabelValues("t-orders-"+run)) }, 3},
		{"partition lease lost", func() { metrics.PartitionLeaseChanged("t-orders-"+run, "lost") },
			func(t *testing.T) float64 {
				return value(t, metrics.PartitionLeaseChanges.WithLabelValues("t-orders-"+run, "lost"))
			}, 1},
		{"breaker open", func() { metrics.SetBreakerState("t-psp", "open") },
			func(t *testing.T) float64 { return value(t, metrics.CircuitBreakerState.WithLabelValues("t-psp")) }, metrics.BreakerOpen},
		{"breaker half-open", func() { metrics.SetBreakerState("t-psp", "half-open") },
			func(t *testing.T) float64 { return value(t, metrics.CircuitBreakerState.WithLabelValues("t-psp")) }, metrics.BreakerHalfOpen},
		{"breaker closed", func() { metrics.SetBreakerState("t-psp", "closed") },
			func(t *testing.T) float64 { return value(t, metrics.CircuitBreakerState.WithLabelValues("t-psp")) }, metrics.BreakerClosed},
		{"saga timeout", func() { metrics.SagaFinished(metrics.SagaTimedOut, "t-deadline-"+run, time.Second) },
			func(t *testing.T) float64 {
				return value(t, metrics.SagaOutcomes.WithLabelValues(metrics.SagaTimedOut, "t-deadline-"+run))
			}, 1},
		{"projection lag", func() { metrics.SetProjectionLag("t-orders", time.Now().Add(-time.Hour)) },
			func(t *testing.T) float64 {
				return float64(int(value(t, metrics.ProjectionLag.WithLabelValues("t-orders")) / 60))
			}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			if got := tt.got(t); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewPollerRefusesNothingToPoll(t *testing.T) {
	if _, err := metrics.NewPoller(metrics.PollerConfig{}); err == nil {
		t.Error("empty config accepted")
	}
	if _, err := metrics.NewPoller(metrics.PollerConfig{Consumers: []metrics.ConsumerRef{{Stream: "S", Name: "c"}}}); err == nil {
		t.Error("consumers without JetStream accepted")
	}
}
