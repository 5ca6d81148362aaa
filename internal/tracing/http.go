package tracing

import (
	"net/http"
	"strconv"

	"github.com/tradewind/tradewind/internal/httpx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Middleware starts a server span per request, child of the request's
// W3C traceparent header when it has a valid one, and rewrites that
// header on the request passed on to the span's own traceparent, so that
// handlers which copy the header into the commands they publish (the API
// gateway does) make the command a child of the HTTP span. The span is
// named after the http.ServeMux pattern that matched ("POST /v1/orders"),
// never the raw path.
//
// Put it outermost (around the metrics middleware and the mux): it copies
// the matched pattern back onto the caller's request. With tracing off it
// returns next itself.
func (p *Provider) Middleware(next http.Handler) http.Handler {
	if !p.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := p.tracer.Start(ctx, r.Method,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
			))
		defer span.End()
		inner := r.WithContext(ctx)
		inner.Header = r.Header.Clone()
		propagator.Inject(ctx, propagation.HeaderCarrier(inner.Header))
		rec := httpx.NewRecorder(w)
		next.ServeHTTP(rec, inner)
		r.Pattern = inner.Pattern
		if inner.Pattern != "" {
			span.SetName(inner.Pattern)
			span.SetAttributes(attribute.String("http.route", inner.Pattern))
		}
		code := rec.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", code))
		if code >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(code))
		}
	})
}
