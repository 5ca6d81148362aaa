package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestDeadlineSweeperPublishesItsCancellations: an order nobody confirms
// is cancelled by the deadline sweeper, whose orders.cancelled reaches
// EVENTS through the sweeper's own commit (outbox.Publisher.Transact):
// no relay runs here to publish it instead.
func TestDeadlineSweeperPublishesItsCancellations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb := testenv.NATS(t)
	dbURL := testenv.FreshDatabaseURL(t)
	httpAddr := testenv.FreeAddr(t)
	cfg := serveConfig(t, "--database-url", dbURL, "--data-dir", t.TempDir(), "--http-addr", httpAddr,
		"--ops-addr", testenv.FreeAddr(t), "--nats-url", emb.URL, "--roles", "api,orders",
		"--order-deadline", "1s", "--deadline-sweep", "50ms")
	started := make(chan State, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks{Started: func(s State) { started <- s }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	testenv.Eventually(t, 60*time.Second, "serve to start (or exit)", func() bool { return len(started) > 0 || len(done) > 0 })
	if len(started) == 0 {
		t.Fatal("serve exited before it started")
	}

	id, _, _ := placeOrder(t, ctx, dbURL, httpAddr, "c-deadline")

	_, js := testenv.Connect(t, emb.URL)
	stream, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	subject := events.EventPrefix + "orders.cancelled." + id
	testenv.Eventually(t, 30*time.Second, "the deadline's "+subject, func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		return err == nil && info.State.Subjects[subject] == 1
	})
}
