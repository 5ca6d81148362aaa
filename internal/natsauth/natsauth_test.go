package natsauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/natsauth"
	"github.com/tradewind/tradewind/internal/ratelimit"
	"github.com/tradewind/tradewind/internal/testenv"
)

// system is a secured server with Tradewind's streams and buckets, created
// as `serve` creates them.
type system struct {
	*testenv.SecureNATS
	opsJS jetstream.JetStream
	jti   string // a revoked session
}

func start(t *testing.T) *system {
	t.Helper()
	s := &system{SecureNATS: testenv.NATSWithAuth(t)}
	ctx := context.Background()
	// The api role creates what it uses at start, with its own rights.
	_, apiJS := s.ConnectAs(t, "api")
	if err := broker.EnsureStreams(ctx, apiJS, broker.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.Ensure(ctx, apiJS, 1); err != nil {
		t.Fatal(err)
	}
	rev, err := auth.NewRevocations(ctx, apiJS, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.jti = "0b8e1c9e-4a4b-4d9e-9a51-3f3b2f0f6a11"
	if err := rev.Revoke(ctx, s.jti); err != nil {
		t.Fatalf("the gateway records a logout: %v", err)
	}
	_, s.opsJS = s.ConnectAs(t, natsauth.UserOps)
	admin, err := flags.Existing(ctx, s.opsJS)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.Update(ctx, "fraud_check", func(f *flags.Flag) { f.Percent = 0 }); err != nil {
		t.Fatalf("ops sets a flag: %v", err)
	}
	return s
}

// refused runs an attempt that the server must refuse: it fails, and the
// connection's last error is the server's permissions violation on
// subject.
func refused(t *testing.T, nc *nats.Conn, subject string, attempt func(ctx context.Context) error) {
	t.Helper()
	// A refused request never gets its answer: a short wait is enough.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := attempt(ctx); err == nil {
		t.Fatalf("%s: the attempt succeeded", subject)
	}
	violation(t, nc, "Publish to", subject)
}

// violation waits for the server's report of a refused publish or
// subscription on subject.
func violation(t *testing.T, nc *nats.Conn, what, subject string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, "a permissions violation on "+subject, func() bool {
		err := nc.LastError()
		return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what+` "`+subject+`"`)
	})
}

// publishRaw publishes through JetStream (waiting for an ack that a
// refused publish never gets).
func publishRaw(js jetstream.JetStream, subject string, hdr nats.Header) func(context.Context) error {
	return func(ctx context.Context) error {
		m := nats.NewMsg(subject)
		m.Data = []byte(`{}`)
		for k, v := range hdr {
			m.Header[k] = v
		}
		_, err := js.PublishMsg(ctx, m)
		return err
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestAProducerCannotAttackTheSystem replays issue 11 §3's attacks with a
// producer's credentials; each is refused by the server and leaves no
// trace.
func TestAProducerCannotAttackTheSystem(t *testing.T) {
	s := start(t)
	nc, js := s.ConnectAs(t, natsauth.ProducerPrefix+"orders")
	ctx := context.Background()

	t.Run("deleting a revocation", func(t *testing.T) {
		subject := "$KV.tradewind_revoked." + s.jti
		refused(t, nc, subject, publishRaw(js, subject, nats.Header{"KV-Operation": {"DEL"}}))
		refused(t, nc, subject, publishRaw(js, subject, nats.Header{"KV-Operation": {"PURGE"}, "Nats-Rollup": {"sub"}}))
		kv, err := s.opsJS.KeyValue(ctx, auth.DefaultRevocationBucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, s.jti); err != nil {
			t.Fatalf("the revocation is gone: %v", err)
		}
	})
	t.Run("publishing an event", func(t *testing.T) {
		subject := "evt.payments.authorized.7f1c4a52-5b7e-4a3f-9d0e-2c1b0a9f8e7d"
		refused(t, nc, subject, publishRaw(js, subject, nil))
		if n := streamMsgs(t, s.opsJS, broker.StreamEvents); n != 0 {
			t.Fatalf("EVENTS holds %d messages", n)
		}
	})
	t.Run("pushing a notification to a user", func(t *testing.T) {
		refused(t, nc, "ntf.user.c-1", publishRaw(js, "ntf.user.c-1", nil))
		// A core publish (what the WebSocket fan-out listens to) is
		// refused asynchronously: the server reports it on a fresh
		// connection.
		core, _ := s.ConnectAs(t, natsauth.ProducerPrefix+"orders")
		if err := core.Publish("ntf.user.c-1", []byte("re-enter your card at https://evil.example/pay")); err != nil {
			t.Fatal(err)
		}
		violation(t, core, "Publish to", "ntf.user.c-1")
		if n := streamMsgs(t, s.opsJS, broker.StreamNotifications); n != 0 {
			t.Fatalf("NOTIFICATIONS holds %d messages", n)
		}
	})
	t.Run("sending another context's command", func(t *testing.T) {
		refused(t, nc, "cmd.customers.upsert", publishRaw(js, "cmd.customers.upsert", nil))
	})
	t.Run("purging and deleting streams", func(t *testing.T) {
		for _, subject := range []string{
			"$JS.API.STREAM.PURGE." + broker.StreamEvents,
			"$JS.API.STREAM.DELETE." + broker.StreamCommands,
			"$JS.API.STREAM.DELETE.KV_" + auth.DefaultRevocationBucket,
			"$JS.API.STREAM.MSG.DELETE." + broker.StreamEvents,
			"$JS.API.CONSUMER.DELETE." + broker.StreamCommands + ".orders-commands",
		} {
			refused(t, nc, subject, func(ctx context.Context) error {
				_, err := nc.RequestWithContext(ctx, subject, []byte(`{}`))
				return err
			})
		}
	})
	t.Run("flipping a flag", func(t *testing.T) {
		subject := "$KV." + flags.Bucket + ".fraud_check"
		refused(t, nc, subject, publishRaw(js, subject, nil))
		admin, err := flags.Existing(ctx, s.opsJS)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := admin.Get(ctx, "fraud_check"); err != nil || f.Percent != 0 {
			t.Fatalf("the flag changed: %+v, %v", f, err)
		}
	})
	t.Run("reading the system's traffic", func(t *testing.T) {
		for _, subject := range []string{"ntf.>", "evt.>", "cmd.>", natsauth.InboxPrefix("orders") + ".>", "$KV.>"} {
			if _, err := nc.SubscribeSync(subject); err != nil {
				t.Fatal(err)
			}
			violation(t, nc, "Subscription to", subject)
		}
	})
}

// TestOnlyOpsPurgesAndFlipsFlags: even a Tradewind role cannot purge a
// stream, delete a consumer or set a flag; the gateway cannot publish
// events; ops can do all of it.
func TestOnlyOpsPurgesAndFlipsFlags(t *testing.T) {
	s := start(t)
	for _, role := range []string{"api", "relay", "orders", "payments", "projections", "ws", natsauth.UserAll} {
		t.Run(role, func(t *testing.T) {
			nc, js := s.ConnectAs(t, role)
			for _, subject := range []string{"$JS.API.STREAM.PURGE." + broker.StreamEvents, "$JS.API.STREAM.DELETE." + broker.StreamDLQ} {
				refused(t, nc, subject, func(ctx context.Context) error {
					_, err := nc.RequestWithContext(ctx, subject, []byte(`{}`))
					return err
				})
			}
			subject := "$KV." + flags.Bucket + ".fraud_check"
			refused(t, nc, subject, publishRaw(js, subject, nil))
		})
	}
	t.Run("the gateway publishes no event", func(t *testing.T) {
		nc, js := s.ConnectAs(t, "api")
		refused(t, nc, "evt.orders.confirmed.x", publishRaw(js, "evt.orders.confirmed.x", nil))
		refused(t, nc, "ntf.user.c-1", publishRaw(js, "ntf.user.c-1", nil))
	})
	t.Run("ops", func(t *testing.T) {
		ctx := context.Background()
		admin, err := flags.Existing(ctx, s.opsJS)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := admin.Update(ctx, "fraud_check", func(f *flags.Flag) { f.Percent = 100 }); err != nil {
			t.Fatal(err)
		}
		st, err := s.opsJS.Stream(ctx, broker.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRolesDoTheirJob: the legitimate paths work with the same rights:
// a producer sends its command, the gateway records a logout and keeps
// rate limits, the relay publishes an event and a notification, and the
// WebSocket role receives the notification.
func TestRolesDoTheirJob(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, prodJS := s.ConnectAs(t, natsauth.ProducerPrefix+"orders")
	cmd, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		OrderID: "7f1c4a52-5b7e-4a3f-9d0e-2c1b0a9f8e7d", CustomerID: "c-1", Currency: "EUR",
		Lines: []events.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1250}},
	}, events.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Publish(ctx, prodJS, cmd); err != nil {
		t.Fatalf("a producer sends its own command: %v", err)
	}

	_, apiJS := s.ConnectAs(t, "api")
	rev, err := auth.NewRevocations(ctx, apiJS, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if revoked, err := rev.IsRevoked(ctx, s.jti); err != nil || !revoked {
		t.Fatalf("the gateway reads revocations: %v %v", revoked, err)
	}
	rl, err := ratelimit.NewKV(ctx, apiJS, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rl.Take(ctx, "caller", time.Now(), ratelimit.Limit{Rate: 10, Burst: 10}); err != nil {
		t.Fatalf("the gateway keeps rate limits: %v", err)
	}

	wsNC, wsJS := s.ConnectAs(t, "ws")
	got, err := wsNC.SubscribeSync("ntf.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := wsNC.Flush(); err != nil {
		t.Fatal(err)
	}
	wsRev, err := auth.NewRevocations(ctx, wsJS, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wsRev.Watch(ctx); err != nil {
		t.Fatalf("the WebSocket role watches revocations: %v", err)
	}

	_, relayJS := s.ConnectAs(t, "relay")
	for _, subject := range []string{"evt.orders.confirmed.7f1c4a52-5b7e-4a3f-9d0e-2c1b0a9f8e7d", "ntf.user.c-1"} {
		if _, err := relayJS.Publish(ctx, subject, []byte(`{}`)); err != nil {
			t.Fatalf("the relay publishes %s: %v", subject, err)
		}
	}
	m, err := got.NextMsg(10 * time.Second)
	if err != nil || m.Subject != "ntf.user.c-1" {
		t.Fatalf("the WebSocket role receives the notification: %v %v", m, err)
	}
}

// TestServerConfigParses: the generated authorization block is a valid
// nats-server configuration.
func TestServerConfigParses(t *testing.T) {
	ps, err := natsauth.Principals([]string{"orders", "relay"})
	if err != nil {
		t.Fatal(err)
	}
	pws := map[string]string{}
	for _, p := range ps {
		pws[p.User] = "pw-" + p.User
	}
	conf, err := natsauth.ServerConfig(ps, pws)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if len(opts.Users) != len(ps) {
		t.Fatalf("%d users parsed, want %d", len(opts.Users), len(ps))
	}
	for _, u := range opts.Users {
		if u.Username == "orders_relay" {
			if !containsAll(u.Permissions.Publish.Allow, "$JS.ACK.COMMANDS.>", "evt.>") || u.Permissions.Response == nil {
				t.Errorf("orders_relay: %+v", u.Permissions.Publish)
			}
			if !strings.HasPrefix(u.Password, "$2a$") {
				t.Errorf("password not hashed: %q", u.Password)
			}
		}
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestSecurityDocShowsThePermissionTable: docs/security.md shows the
// table this package enforces.
func TestSecurityDocShowsThePermissionTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), natsauth.MarkdownTable()) {
		t.Errorf("docs/security.md (NATS accounts) lacks the current table; put this there:\n%s", natsauth.MarkdownTable())
	}
}

// TestOnlyTheGatewayHandlesImages: the api role creates the image bucket,
// stores an object and reads it back (metadata and chunks); another role
// can do neither.
func TestOnlyTheGatewayHandlesImages(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, apiJS := s.ConnectAs(t, "api")
	obs, err := broker.EnsureImageStore(ctx, apiJS, 1)
	if err != nil {
		t.Fatalf("the gateway creates the image bucket: %v", err)
	}
	data := []byte(strings.Repeat("pixels", 50_000)) // several chunks
	if _, err := obs.PutBytes(ctx, "abc/original.png", data); err != nil {
		t.Fatalf("the gateway stores an image: %v", err)
	}
	if _, err := obs.GetInfo(ctx, "abc/original.png"); err != nil {
		t.Fatalf("the gateway reads an image's metadata: %v", err)
	}
	got, err := obs.GetBytes(ctx, "abc/original.png")
	if err != nil || string(got) != string(data) {
		t.Fatalf("the gateway reads an image back: %d bytes, %v", len(got), err)
	}

	nc, js := s.ConnectAs(t, "orders")
	subject := "$O." + broker.ImageBucket + ".M.x"
	refused(t, nc, subject, publishRaw(js, subject, nil))
	subject = "$JS.API.STREAM.PURGE.OBJ_" + broker.ImageBucket
	refused(t, nc, subject, func(ctx context.Context) error {
		_, err := nc.RequestWithContext(ctx, subject, []byte(`{}`))
		return err
	})
}
