package testenv

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/natsauth"
)

// SecureNATS is an embedded NATS server with Tradewind's users and
// permissions (internal/natsauth), as `serve` starts it.
type SecureNATS struct {
	*broker.Embedded
	Passwords map[string]string
}

// NATSWithAuth starts an embedded server whose only clients are
// natsauth's principals (plus a user per extra role set); it is shut down
// when the test ends.
func NATSWithAuth(t testing.TB, extra ...[]string) *SecureNATS {
	t.Helper()
	ps, err := natsauth.Principals(extra...)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.User
	}
	pws, err := natsauth.Ensure(t.TempDir(), names)
	if err != nil {
		t.Fatal(err)
	}
	users, err := natsauth.ServerUsers(ps, pws)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Dir: t.TempDir(), Port: -1, Users: users})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	return &SecureNATS{Embedded: emb, Passwords: pws}
}

// ConnectAs opens a connection as user (closed when the test ends). Its
// asynchronous errors (permission violations) are reported with t.Log.
func (s *SecureNATS) ConnectAs(t testing.TB, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	pw, ok := s.Passwords[user]
	if !ok {
		t.Fatalf("no NATS user %q", user)
	}
	var done atomic.Bool
	opts := append(natsauth.ClientOptions(user, pw), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if !done.Load() {
			t.Logf("NATS %s: %v", user, err)
		}
	}))
	nc, err := broker.Connect(s.URL, t.Name()+"-"+user, opts...)
	if err != nil {
		t.Fatalf("connect NATS as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	t.Cleanup(func() { done.Store(true) })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("JetStream: %v", err)
	}
	return nc, js
}
