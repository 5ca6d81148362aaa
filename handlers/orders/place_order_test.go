package orders_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/sagatest"
)

const wait = 20 * time.Second

// placedEvent reads the order's orders.placed from the EVENTS stream.
func placedEvent(t *testing.T, s *sagatest.System, orderID string) events.OrderPlaced {
	t.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var msgData []byte
	s.Eventually(wait, "orders.placed of "+orderID+" on EVENTS", func() bool {
		m, err := st.GetLastMsgForSubject(ctx, events.MustLookup(events.OrderPlacedV1).Subject(orderID))
		if err != nil {
			return false
		}
		msgData = m.Data
		return true
	})
	var p events.OrderPlaced
	if err := json.Unmarshal(msgData, &p); err != nil {
		t.Fatalf("orders.placed data %q: %v", msgData, err)
	}
	return p
}

// TestPlaceOrderV2KeepsShippingAddressAndPromoCode: a v2 command's address
// and promotion code are stored on the order (orders.orders) and carried on
// orders.placed; a v1 command (upcast to v2) has neither.
func TestPlaceOrderV2KeepsShippingAddressAndPromoCode(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"orders"}})
	addr := &events.ShippingAddress{Name: "Ada Lovelace", Line1: "12 St James's Sq", Line2: "Flat 2", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	lines := []events.OrderLine{{SKU: "V2-A", Quantity: 2, UnitPrice: 700}}

	v2 := uuid.NewString()
	s.Publish(events.PlaceOrderV2, events.PlaceOrderV2Data{OrderID: v2, CustomerID: "c-v2", Currency: "EUR", Lines: lines,
		ShippingAddress: addr, PromoCode: "SPRING-26"})
	v1 := uuid.NewString()
	s.Publish(events.PlaceOrderV1, events.PlaceOrder{OrderID: v1, CustomerID: "c-v2", Currency: "EUR", Lines: lines})

	for _, tc := range []struct {
		name, id  string
		wantAddr  *events.ShippingAddress
		wantPromo string
	}{
		{"v2 keeps both", v2, addr, "SPRING-26"},
		{"v1 has neither", v1, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := s.For(t)
			s.WaitOrder(tc.id, events.StatusPending, wait)
			var stored []byte
			var promo *string
			if err := s.Pool.QueryRow(context.Background(),
				`SELECT shipping_address, promo_code FROM orders.orders WHERE order_id = $1`, tc.id).Scan(&stored, &promo); err != nil {
				t.Fatal(err)
			}
			var gotAddr *events.ShippingAddress
			if stored != nil {
				if err := json.Unmarshal(stored, &gotAddr); err != nil {
					t.Fatal(err)
				}
			}
			if !sameAddress(gotAddr, tc.wantAddr) {
				t.Errorf("orders.orders.shipping_address = %+v, want %+v", gotAddr, tc.wantAddr)
			}
			if got := deref(promo); got != tc.wantPromo {
				t.Errorf("orders.orders.promo_code = %q, want %q", got, tc.wantPromo)
			}
			p := placedEvent(t, s, tc.id)
			if !sameAddress(p.ShippingAddress, tc.wantAddr) || p.PromoCode != tc.wantPromo {
				t.Errorf("orders.placed carries address %+v, promo %q; want %+v, %q", p.ShippingAddress, p.PromoCode, tc.wantAddr, tc.wantPromo)
			}
		})
	}
}

func sameAddress(a, b *events.ShippingAddress) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestAZeroTotalIsRejectedNotDeadLettered: a producer on NATS sends a
// place command whose lines total 0 (unit_price 0). The orders
// participant records the order as rejected and emits orders.rejected
// only: inventory reserves nothing, payments authorizes nothing, nothing is
// dead-lettered, and a later cancel of the order is ignored.
func TestAZeroTotalIsRejectedNotDeadLettered(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	sku := "ZERO-" + uuid.NewString()[:8] // fresh stock under -count=N
	s.Restock(sku, 5)
	id := uuid.NewString()
	s.Publish(events.PlaceOrderV2, events.PlaceOrderV2Data{OrderID: id, CustomerID: "c-zero", Currency: "EUR",
		Lines: []events.OrderLine{{SKU: sku, Quantity: 2, UnitPrice: 0}}})
	s.WaitOrder(id, events.StatusRejected, wait)
	if _, reason := s.OrderStatus(id); reason != events.RejectInvalidTotal {
		t.Errorf("reason %q, want %s", reason, events.RejectInvalidTotal)
	}
	s.WaitEvents(id, wait, "orders.rejected")
	cancel := s.Publish(events.CancelOrderV1, events.CancelOrder{OrderID: id})
	s.Eventually(wait, "the cancel handled", func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM core.inbox WHERE consumer = 'orders-commands' AND event_id = $1`, cancel.ID())
		return n == 1
	})
	if st, _ := s.OrderStatus(id); st != events.StatusRejected {
		t.Errorf("after a cancel the order is %s, want still rejected", st)
	}
	if got := s.Events(id); len(got) != 1 || got[0] != "orders.rejected" {
		t.Errorf("events %v, want only orders.rejected", got)
	}
	if onHand, reserved := s.Stock(sku); onHand != 5 || reserved != 0 {
		t.Errorf("stock on_hand %d reserved %d, want 5 and 0", onHand, reserved)
	}
	if st := s.StockOrder(id); st != "" {
		t.Errorf("inventory heard of the order (%s)", st)
	}
	if st := s.Payment(id); st != "" {
		t.Errorf("payments heard of the order (%s)", st)
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	want := []string{"place_order:rejected", "cancel_order:ignored"}
	if got := s.SagaLog(id); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("saga log %v, want %v", got, want)
	}
}
