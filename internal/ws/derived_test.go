package ws_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/ws"
)

// The notifier publishes a notification once, on its user's channel; the
// order's channel and the ops feed get it from events.HeaderOrder.
func TestOneNotificationReachesItsUserItsOrderAndTheOpsFeed(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	alice, order := user(t, "alice"), uuid.NewString()
	e.notify(alice, order) // seq 1: makes the order known, so alice may subscribe to it
	aliceTok, _ := e.token(alice, auth.RoleCustomer)
	opsTok, _ := e.token(user(t, "op"), auth.RoleOps)

	a := connect(t, s.url, aliceTok)
	a.subscribe("user", 1)
	a.next()
	a.subscribe("order."+order, 1)
	a.next()
	ops := connect(t, s.url, opsTok)
	ops.subscribe(events.ChannelOpsOrders, 0)
	ops.next()

	seq := e.notify(alice, order)
	got := map[string]frame{}
	for len(got) < 2 {
		f := a.next()
		if f.Type == "notification" {
			got[f.Channel] = f
		}
	}
	// The ops feed is live only: seq 1 reaches it too when the hub
	// dispatches it after ops subscribed (e.notify does not wait for the
	// hub), so it waits for the seq it expects.
	for f := ops.next(); ; f = ops.next() {
		if f.Type == "notification" && f.Seq == seq {
			got[f.Channel] = f
			break
		}
	}
	// The same notification on each channel: its id and seq (a channel
	// may get it from its backfill, the inbox's JSON, rather than live).
	id := func(f frame) string {
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(f.Event, &ev)
		return ev.ID
	}
	for _, ch := range []string{"user", "order." + order, events.ChannelOpsOrders} {
		f, ok := got[ch]
		if !ok {
			t.Fatalf("no notification on %s; got %v", ch, got)
		}
		if f.Seq != seq || id(f) == "" || id(f) != id(got["user"]) {
			t.Fatalf("%s: seq %d event %s, want seq %d and the user channel's event %s", ch, f.Seq, f.Event, seq, got["user"].Event)
		}
	}
}

// A header naming an order other than the notification's data is a
// forgery (or a bug): the message reaches no one, not even its user.
func TestAHeaderNamingAnotherOrderIsDropped(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	alice, bob := user(t, "alice"), user(t, "bob")
	aliceOrder, bobOrder := uuid.NewString(), uuid.NewString()
	e.notify(alice, aliceOrder)
	e.notify(bob, bobOrder)
	aliceTok, _ := e.token(alice, auth.RoleCustomer)
	bobTok, _ := e.token(bob, auth.RoleCustomer)
	a := connect(t, s.url, aliceTok)
	a.subscribe("user", 1)
	a.next()
	b := connect(t, s.url, bobTok)
	b.subscribe("order."+bobOrder, 1)
	b.next()

	// alice's notification about her order, with bob's order in the header.
	ev, err := events.New(events.NotificationV1, events.UserChannel(alice), events.NotificationData{
		UserID: alice, Seq: 50, Kind: "order.placed", Title: "forged", OrderID: aliceOrder,
		Source: events.NotificationCause{ID: uuid.NewString(), Type: events.OrderPlacedV1},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cenats.NewMsg(events.NotificationPrefix+events.UserChannel(alice), ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Header[events.HeaderOrder] = []string{bobOrder}
	if err := e.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	// Dispatch is serial: what bob and alice receive next is what comes
	// after the forgery, had it been delivered.
	bobSeq := e.notify(bob, bobOrder)
	if f := b.next(); f.Type != "notification" || f.Seq != bobSeq {
		t.Fatalf("bob's order channel got %s, want his own seq %d", f.raw, bobSeq)
	}
	aliceSeq := e.notify(alice, "")
	if f := a.next(); f.Type != "notification" || f.Seq != aliceSeq {
		t.Fatalf("alice's channel got %s, want seq %d (the forgery dropped)", f.raw, aliceSeq)
	}
}
