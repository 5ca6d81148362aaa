package cenats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
)

// startServer runs an in-process nats-server on a random loopback port.
func startServer(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestNATSEndToEnd publishes events over a real NATS server, in both
// content modes, and decodes what the subscriber receives.
func TestNATSEndToEnd(t *testing.T) {
	nc := startServer(t)
	ctx := context.Background()
	sub, err := nc.SubscribeSync("evt.orders.placed.*")
	if err != nil {
		t.Fatal(err)
	}

	data := events.OrderPlaced{
		OrderID:    "0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10",
		CustomerID: "Kundin Jürgens",
		Lines:      []events.OrderLine{{SKU: "SKU 1", Quantity: 2, UnitPrice: 1999}},
		Currency:   "EUR",
		Total:      3998,
		PlacedAt:   "2026-03-04T05:06:07Z",
		Deadline:   "2026-03-04T05:21:07Z",
	}
	want, err := events.New(events.OrderPlacedV1, data.OrderID, data,
		events.WithCorrelation("Grüße aus Köln – 100% \"sicher\""),
		events.WithTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := events.NATSSubject(want)
	if err != nil {
		t.Fatal(err)
	}

	msg, err := NewMsg(subject, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	sh, sb, err := EncodeStructured(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Header: sh, Data: sb}); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"binary", "structured"} {
		got, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if got.Subject != subject {
			t.Errorf("%s: subject %q, want %q", mode, got.Subject, subject)
		}
		if mode == "binary" {
			if v := got.Header.Get("ce-correlationid"); v != "Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln%20%E2%80%93%20100%25%20%22sicher%22" {
				t.Errorf("ce-correlationid on the wire = %q", v)
			}
			if v := got.Header.Get(HeaderMsgID); v != want.ID() {
				t.Errorf("Nats-Msg-Id on the wire = %q", v)
			}
		}
		e, err := Decode(got.Header, got.Data)
		if err != nil {
			t.Fatalf("%s: Decode: %v", mode, err)
		}
		if d := diffEvents(want, e); d != "" {
			t.Errorf("%s: received event differs: %s", mode, d)
		}
		var back events.OrderPlaced
		if err := events.DecodeData(e, &back); err != nil || back.CustomerID != data.CustomerID {
			t.Errorf("%s: data = %+v, %v", mode, back, err)
		}
		for _, ext := range []string{events.ExtCorrelationID, events.ExtTraceparent, events.ExtPartitionKey} {
			if _, ok := e.Extensions()[ext].(string); !ok {
				t.Errorf("%s: extension %s = %#v, want a string", mode, ext, e.Extensions()[ext])
			}
		}
	}

	// A message that is not a CloudEvent is refused, not mistaken for one.
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Data: []byte(`{"hello":"world"}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(got.Header, got.Data); err == nil {
		t.Error("plain message decoded as a CloudEvent")
	}
}
