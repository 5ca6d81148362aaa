package ws_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/internal/ws"
)

// TestInvalidNotificationsAreDroppedBeforeFanOut: whoever manages to
// publish on ntf.> (NATS permissions allow only the relay), a message that
// is not a notification, fails its schema, or is on another user's
// subject never reaches a socket; each is counted by reason. The next
// valid notification is the first frame the user sees.
func TestInvalidNotificationsAreDroppedBeforeFanOut(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "phished")
	tok, _ := e.token(u, auth.RoleCustomer)
	c := connect(t, s.url, tok)
	c.subscribe("user", 0)
	if f := c.next(); f.Type != "subscribed" {
		t.Fatalf("got %s", f.raw)
	}
	subject := "ntf." + events.UserChannel(u)
	phish := map[string]any{
		"user_id": u, "seq": 1, "kind": "payment.declined",
		"title": "Your card was declined", "body": "re-enter it at https://evil.example/pay",
		"links": map[string]any{}, "source": map[string]any{"id": "x", "type": "y"},
	}
	publish := func(channel string, data map[string]any) {
		t.Helper()
		ev, err := events.New(events.NotificationV1, channel, data)
		if err != nil {
			t.Fatal(err)
		}
		m, err := cenats.NewMsg(subject, ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	dropped := func(reason string) float64 { return testutil.ToFloat64(metrics.WSDropped.WithLabelValues(reason)) }
	before := map[string]float64{}
	for _, r := range []string{"decode", "schema", "subject"} {
		before[r] = dropped(r)
	}

	withURL := map[string]any{"url": "https://evil.example/pay"} // not in the schema
	for k, v := range phish {
		withURL[k] = v
	}
	publish(events.UserChannel(u), withURL)
	noTitle := map[string]any{}
	for k, v := range phish {
		if k != "title" {
			noTitle[k] = v
		}
	}
	publish(events.UserChannel(u), noTitle)
	publish(events.UserChannel("someone-else"), phish) // valid data, another channel
	if err := e.nc.Publish(subject, []byte("re-enter your card at https://evil.example/pay")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "four notifications dropped", func() bool {
		return dropped("schema") == before["schema"]+2 && dropped("subject") == before["subject"]+1 &&
			dropped("decode") == before["decode"]+1
	})

	seq := e.notify(u, "")
	f := c.next()
	if f.Type != "notification" || f.Seq != seq {
		t.Fatalf("first frame after the dropped ones: %s", f.raw)
	}
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(f.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ev.Data), "evil.example") {
		t.Fatalf("the phishing notification reached the socket: %s", f.raw)
	}
}

// TestAnOrdersNotificationReachesTheOpsFeedLive: the notifier copies a
// notification about an order to the order's channel and the ops feed
// (same CloudEvent, other subjects); the fan-out's subject check lets
// those copies through, live.
func TestAnOrdersNotificationReachesTheOpsFeedLive(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "copies")
	order := uuid.NewString()
	opsTok, _ := e.token("ops-"+u, auth.RoleOps)
	ops := connect(t, s.url, opsTok)
	ops.subscribe("ops.orders", 0)
	if f := ops.next(); f.Type != "subscribed" {
		t.Fatalf("got %s", f.raw)
	}
	e.notify(u, order)
	if f := ops.next(); f.Type != "notification" {
		t.Fatalf("ops feed: got %s, want the notification", f.raw)
	}
}
