package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tradewind/tradewind/internal/httpx"
)

// HTTP RED series, labelled by route pattern (never the raw path).
var (
	HTTPRequests = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	HTTPDuration = factory.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "HTTP request duration by route pattern and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	HTTPInFlight = factory.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being served.",
	})
)

// UnmatchedRoute labels requests no pattern matched (404s, 405s), so
// scanners cannot create series.
const UnmatchedRoute = "unmatched"

// HTTP is RED middleware: it counts requests by route pattern (the
// http.ServeMux pattern in r.Pattern, read after the handler ran, so it
// can wrap a whole mux or a single route), method and status code, and
// times them. The ResponseWriter it passes on unwraps (Unwrap) to the
// original, so http.ResponseController, flushing and WebSocket hijacking
// keep working.
func HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		HTTPInFlight.Inc()
		defer HTTPInFlight.Dec()
		rec := httpx.NewRecorder(w)
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = UnmatchedRoute
		}
		code := rec.Status()
		method := normalizeMethod(r.Method)
		HTTPRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
		HTTPDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
