package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// syncBuffer is a log sink safe for the runner's goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestEveryMessageLogLineCarriesItsIdentity(t *testing.T) {
	s := newSystem(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	cmd := placeOrder(t, "log-"+t.Name(), 1)
	events.WithCorrelation("corr-42")(cmd)
	events.WithTraceparent("00-" + traceID + "-00f067aa0ba902b7-01")(cmd)
	publishRaw(t, s.js, cmd, cmd.ID())

	var sink syncBuffer
	var failed atomic.Bool
	h := runner.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
		runner.LoggerFrom(ctx).Info("handler says hello")
		if d, _ := runner.DeliveryFrom(ctx); d.NumDelivered == 1 {
			failed.Store(true)
			return nil, errors.New("first delivery fails")
		}
		return nil, nil
	})
	r, _ := s.start(ordersConsumer("log-orders"), h, runner.WithLogger(slog.New(slog.NewJSONHandler(&sink, nil))))
	testenv.Eventually(t, 10*time.Second, "applied after one retry", func() bool { return r.Stats().Applied.Load() == 1 })

	var fromMessages int
	for _, line := range sink.lines() {
		if line["msg"] != "handler says hello" && line["msg"] != "message failed; will retry" {
			continue
		}
		fromMessages++
		want := map[string]any{
			"event_id": cmd.ID(), "type": cmd.Type(), "correlation_id": "corr-42",
			"trace_id": traceID, "consumer": "log-orders",
		}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("line %q: %s = %v, want %v", line["msg"], k, line[k], v)
			}
		}
		if _, has := line["data"]; has {
			t.Errorf("line %q logs the payload", line["msg"])
		}
	}
	// Delivery 1: hello on the fast path, hello again on the savepoint
	// path, the retry warning; delivery 2: hello.
	if fromMessages != 4 || !failed.Load() {
		t.Errorf("%d log lines from handling, want 4", fromMessages)
	}
}

func TestTraceID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"", ""},
		{"garbage", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", ""},
	}
	for _, tt := range tests {
		if got := runner.TraceID(tt.in); got != tt.want {
			t.Errorf("TraceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
