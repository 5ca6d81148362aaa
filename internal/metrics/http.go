package metrics

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = UnmatchedRoute
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
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

// statusRecorder remembers the first status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the original writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush supports streaming handlers that assert http.Flusher.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Hijack supports WebSocket upgrades that assert http.Hijacker; a hijacked
// connection is recorded as 101 Switching Protocols.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && s.code == 0 {
		s.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}
