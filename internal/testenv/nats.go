// Package testenv starts the real dependencies of integration tests: an
// embedded NATS JetStream server per test and a fresh PostgreSQL database
// per test package. Nothing here mocks a broker or a database.
package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
)

// NATS starts an embedded nats-server with JetStream on a random loopback
// port, with its store in a temporary directory; it is shut down when the
// test ends.
func NATS(t testing.TB) *broker.Embedded {
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

// Connect opens a client connection closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := broker.Connect(url, t.Name())
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("JetStream: %v", err)
	}
	return nc, js
}

// JetStream starts a server, connects, and creates Tradewind's streams.
func JetStream(t testing.TB) (*broker.Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	emb := NATS(t)
	nc, js := Connect(t, emb.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := broker.EnsureStreams(ctx, js, broker.DefaultTopology()); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return emb, nc, js
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
