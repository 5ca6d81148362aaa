package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/tradewind/tradewind/internal/httpx"
)

// Headers the gateway reads and writes. Each is in canonical form, so
// that it can index an http.Header directly (TestHeaderNamesAreCanonical).
const (
	HeaderRequestID      = "X-Request-Id"
	HeaderCorrelationID  = "X-Correlation-Id"
	HeaderTraceparent    = "Traceparent"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
	HeaderPosition       = "Tradewind-Position"
	HeaderAcceptVersion  = "Accept-Version"
	HeaderSchemaVersion  = "Tradewind-Schema-Version"
)

// idRE is what a client-supplied request or correlation id may look like;
// anything else is replaced, so ids are safe to log and to put in events.
var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCorrelationID
	keyTraceparent
	keyCaller
)

func requestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

func correlationIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyCorrelationID).(string)
	return s
}

func traceparentFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyTraceparent).(string)
	return s
}

// callerSlot lets the handler tell the access log who called.
type callerSlot struct{ caller string }

func setCaller(ctx context.Context, caller string) {
	if s, ok := ctx.Value(keyCaller).(*callerSlot); ok {
		s.caller = caller
	}
}

// Wrap adds the gateway's cross-cutting middleware to a handler: request
// and correlation ids (from X-Request-Id / X-Correlation-Id when well
// formed, else a new UUIDv7; the correlation id defaults to the request
// id, and both reach the CloudEvent), a structured access log line per
// request (never headers or bodies), and panic recovery answering 500
// problem+json with the request id.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get(HeaderRequestID)
		if !idRE.MatchString(rid) {
			rid = newID()
		}
		cid := r.Header.Get(HeaderCorrelationID)
		if !idRE.MatchString(cid) {
			cid = rid
		}
		tp := r.Header.Get(HeaderTraceparent)
		if !traceparentRE.MatchString(tp) {
			tp = ""
		}
		slot := &callerSlot{}
		ctx := context.WithValue(r.Context(), keyRequestID, rid)
		ctx = context.WithValue(ctx, keyCorrelationID, cid)
		ctx = context.WithValue(ctx, keyTraceparent, tp)
		ctx = context.WithValue(ctx, keyCaller, slot)
		r = r.WithContext(ctx)
		w.Header().Set(HeaderRequestID, rid)
		rec := httpx.NewRecorder(w)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "request_id", rid, "route", r.Pattern, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.Written() {
					writeProblem(rec, r, problem(http.StatusInternalServerError, "internal", "Internal error",
						"the gateway failed; quote the request id when reporting it"))
				}
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("request_id", rid), slog.String("correlation_id", cid),
				slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("path", r.URL.Path),
				slog.Int("status", rec.Status()), slog.Int64("bytes", rec.Bytes()),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("caller", slot.caller))
		}()
		next.ServeHTTP(rec, r)
	})
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
