package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/tracing"
)

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID   = "00f067aa0ba902b7"
	incoming = "00-" + traceID + "-" + spanID + "-01"
)

// recording returns a provider whose spans the recorder keeps.
func recording(t *testing.T) (*tracing.Provider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.NewProvider(tp, tp.Shutdown), rec
}

func traceparentOf(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
}

func TestTracingIsOffWithoutAnEndpoint(t *testing.T) {
	p, err := tracing.Setup(context.Background(), tracing.Config{ServiceName: "tradewind"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("tracing enabled without OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	mux := http.NewServeMux()
	if got := p.Middleware(mux); got != http.Handler(mux) {
		t.Fatal("the HTTP middleware wraps the handler while tracing is off")
	}
	// The no-op tracer still passes a traceparent through.
	ctx, span := tracing.StartMessage(context.Background(), p.Tracer(), "c", "s", newEvent(t, incoming))
	span.End()
	if got := tracing.Traceparent(ctx); got != incoming {
		t.Fatalf("traceparent with tracing off = %q, want %q", got, incoming)
	}
}

func TestInvalidEndpointIsRefused(t *testing.T) {
	for _, ep := range []string{"collector:4318", "ftp://collector", "http://"} {
		if _, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: ep}); err == nil {
			t.Errorf("Setup accepted endpoint %q", ep)
		}
	}
}

func TestSpansAreExportedToTheOTLPEndpoint(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	p, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: collector.URL + "/", ServiceName: "tradewind-test"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() {
		t.Fatal("tracing off with an endpoint")
	}
	_, span := p.Tracer().Start(context.Background(), "work")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil { // flushes the batch
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "POST /v1/traces application/x-protobuf" {
		t.Fatalf("collector received %v, want a protobuf POST to /v1/traces", paths)
	}
}

func newEvent(t *testing.T, traceparent string) *event.Event {
	t.Helper()
	e, err := events.New(events.OrderPlacedV1, "0190f1d2-0000-7000-8000-000000000001", map[string]any{}, events.WithTraceparent(traceparent))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMessageSpanFollowsTheTraceparentExtension(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		wantParent  bool
	}{
		{"with a traceparent", incoming, true},
		{"without one", "", false},
		{"with a malformed one", "00-zz-yy-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := recording(t)
			ev := newEvent(t, tt.traceparent)
			ctx, span := tracing.StartMessage(context.Background(), p.Tracer(), "orders-events", "evt.orders.placed.x", ev)
			tracing.End(span, nil)
			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("%d spans, want 1", len(ended))
			}
			parent := ended[0].Parent()
			if tt.wantParent != (parent.TraceID().String() == traceID && parent.SpanID().String() == spanID) {
				t.Fatalf("parent = %s/%s, want the traceparent's: %v", parent.TraceID(), parent.SpanID(), tt.wantParent)
			}
			if got, want := tracing.Traceparent(ctx), traceparentOf(ended[0].SpanContext()); got != want {
				t.Fatalf("Traceparent(ctx) = %q, want the span's %q", got, want)
			}
		})
	}
}

func TestStampReparentsOnlyInheritedTraceparents(t *testing.T) {
	p, _ := recording(t)
	cause := newEvent(t, incoming)
	ctx, span := tracing.StartMessage(context.Background(), p.Tracer(), "c", "s", cause)
	defer span.End()
	own := "00-11111111111111111111111111111111-2222222222222222-01"
	inherited, empty, custom := newEvent(t, incoming), newEvent(t, ""), newEvent(t, own)
	tracing.Stamp(ctx, cause, []*event.Event{inherited, empty, custom})
	child := traceparentOf(span.SpanContext())
	for name, tt := range map[string]struct {
		e    *event.Event
		want string
	}{
		"inherited": {inherited, child}, "empty": {empty, child}, "set by the handler": {custom, own},
	} {
		if got := events.StringExt(tt.e, events.ExtTraceparent); got != tt.want {
			t.Errorf("%s: traceparent %q, want %q", name, got, tt.want)
		}
	}
}

func TestHTTPMiddlewareContinuesTheCallersTrace(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		path        string
		wantName    string
		wantError   bool
	}{
		{"command with a traceparent", incoming, "/v1/orders", "POST /v1/orders", false},
		{"command without one", "", "/v1/orders", "POST /v1/orders", false},
		{"failing route", incoming, "/v1/fail", "POST /v1/fail", true},
		{"no route", "", "/nowhere", "POST", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := recording(t)
			var seen string // the Traceparent header the route handler saw
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
				seen = r.Header.Get("Traceparent")
				w.WriteHeader(http.StatusAccepted)
			})
			mux.HandleFunc("POST /v1/fail", func(w http.ResponseWriter, r *http.Request) {
				seen = r.Header.Get("Traceparent")
				w.WriteHeader(http.StatusInternalServerError)
			})
			var outerPattern string
			outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p.Middleware(mux).ServeHTTP(w, r)
				outerPattern = r.Pattern // what a metrics middleware outside reads
			})
			req := httptest.NewRequest(http.MethodPost, tt.path, nil)
			if tt.traceparent != "" {
				req.Header.Set("Traceparent", tt.traceparent)
			}
			outer.ServeHTTP(httptest.NewRecorder(), req)

			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("%d spans, want 1", len(ended))
			}
			span := ended[0]
			if span.Name() != tt.wantName || span.SpanKind() != trace.SpanKindServer {
				t.Errorf("span %q kind %v, want server span %q", span.Name(), span.SpanKind(), tt.wantName)
			}
			if got := span.Parent().SpanID().String() == spanID; got != (tt.traceparent != "") {
				t.Errorf("span parent %s, want the caller's span: %v", span.Parent().SpanID(), tt.traceparent != "")
			}
			if (span.Status().Code == codes.Error) != tt.wantError {
				t.Errorf("span status %v, want error: %v", span.Status(), tt.wantError)
			}
			if tt.path != "/nowhere" {
				if want := traceparentOf(span.SpanContext()); seen != want {
					t.Errorf("route saw Traceparent %q, want the server span's %q", seen, want)
				}
				if outerPattern == "" {
					t.Error("the matched pattern did not reach the outer middleware")
				}
			}
			if req.Header.Get("Traceparent") != tt.traceparent {
				t.Error("the caller's request headers were modified")
			}
		})
	}
}

func TestBatchSpanLinksEveryMessage(t *testing.T) {
	p, rec := recording(t)
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	_, span := tracing.StartBatch(context.Background(), p.Tracer(), "project orders", []string{incoming, "", "garbage", other})
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans, want 1", len(ended))
	}
	var linked []string
	for _, l := range ended[0].Links() {
		linked = append(linked, l.SpanContext.SpanID().String())
	}
	if len(linked) != 2 || linked[0] != spanID || linked[1] != "2222222222222222" {
		t.Fatalf("links to spans %v, want %s and 2222222222222222", linked, spanID)
	}
	if ended[0].Parent().IsValid() {
		t.Fatal("a batch span has a parent")
	}
}

// BenchmarkMessageSpan is the runner's tracing work per message: start
// the span from the traceparent, end it, stamp one emitted event. (With
// tracing off the runner does none of it: it has no tracer.)
func BenchmarkMessageSpan(b *testing.B) {
	ev, err := events.New(events.OrderPlacedV1, "0190f1d2-0000-7000-8000-000000000001", map[string]any{}, events.WithTraceparent(incoming))
	if err != nil {
		b.Fatal(err)
	}
	// Spans go through the batcher as in production, to an exporter that drops them.
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = sdk.Shutdown(context.Background()) }()
	off, _ := tracing.Setup(context.Background(), tracing.Config{})
	for name, p := range map[string]*tracing.Provider{"sdk": tracing.NewProvider(sdk, nil), "noop": off} {
		b.Run(name, func(b *testing.B) {
			emitted := ev.Clone()
			out := []*event.Event{&emitted}
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := tracing.StartMessage(context.Background(), p.Tracer(), "c", "s", ev)
				tracing.Stamp(ctx, ev, out)
				tracing.End(span, nil)
			}
		})
	}
}
