package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/sagatest"
	"github.com/tradewind/tradewind/projections"
)

// runProjections runs the catalog and orders read models on the saga's
// stream, from position 0 (the package's tests share the database, and the
// checkpoints of an earlier system name positions, and the incarnation, of
// another stream).
func runProjections(t *testing.T, s *sagatest.System) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps := []projector.Projection{projections.ProductSearch{}, projections.Orders{}}
	for _, p := range ps {
		if _, err := s.Pool.Exec(ctx, `UPDATE public.projection_checkpoints SET last_seq = 0, stream_created = NULL WHERE name = $1`, p.Name()); err != nil {
			t.Fatal(err)
		}
	}
	g, err := projector.NewGroup(ps, s.JS, s.Pool, projector.GroupConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestOrdersArePricedFromTheCatalog is issue 11 §1 against the whole
// path: the gateway, the saga (orders, inventory, payments, the relay and
// the provider simulator) and the read models, on real NATS and
// PostgreSQL. The reproduction — customer c-1 posts unit_price 1 for a
// product priced 100000 — is refused with 422; the same order without a
// price is placed and captured at the catalog's price; only an API key
// with orders:price sets its own prices.
func TestOrdersArePricedFromTheCatalog(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{})
	runProjections(t, s)
	keys, err := auth.NewKeys(s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{t: t, js: s.JS, keys: keys, pool: s.Pool}
	gw := sys.gateway()

	run := uuid.NewString()[:8]
	sku, free := "KITE-"+run, "FREE-"+run
	s.Publish(events.UpsertProductV1, events.Product{SKU: sku, Name: "Kite", Price: 100000, Currency: "EUR"})
	s.Publish(events.UpsertProductV1, events.Product{SKU: free, Name: "Sticker", Price: 0, Currency: "EUR"})
	s.Restock(sku, 100)
	s.Restock(free, 100)
	s.Eventually(wait, "the catalog read model has the products", func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM public.product_search WHERE sku = ANY($1)`, []string{sku, free})
		return n == 2
	})

	customer := userToken(t, "c-1", auth.RoleCustomer)
	ops := userToken(t, "ops-1", auth.RoleOps)
	writer := sys.apiKey(auth.ScopeOrdersWrite)
	pricer := sys.apiKey(auth.ScopeOrdersWrite, auth.ScopeOrdersPrice)
	order := func(currency, lines string) string {
		return fmt.Sprintf(`{"customer_id":"c-1","currency":%q,"lines":[%s]}`, currency, lines)
	}
	line := func(sku string, quantity int, price string) string {
		if price == "" {
			return fmt.Sprintf(`{"sku":%q,"quantity":%d}`, sku, quantity)
		}
		return fmt.Sprintf(`{"sku":%q,"quantity":%d,"unit_price":%s}`, sku, quantity, price)
	}

	t.Run("refused with 422 naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			name, bearer, body, slug, field string
		}{
			{"the issue's reproduction: a customer's unit_price 1 for a 100000 product", customer,
				order("EUR", line(sku, 2, "1")), "price-mismatch", "/lines/0/unit_price"},
			{"an operator's token sets no prices either", ops,
				order("EUR", line(sku, 2, "1")), "price-mismatch", "/lines/0/unit_price"},
			{"an API key without orders:price is priced like a customer", writer,
				order("EUR", line(sku, 2, "1")), "price-mismatch", "/lines/0/unit_price"},
			{"currency mismatch", customer, order("USD", line(sku, 1, "")), "currency-mismatch", "/currency"},
			{"unknown SKU", customer, order("EUR", line(sku, 1, "")+","+line("NOPE-"+run, 1, "")), "unknown-sku", "/lines/1/sku"},
			{"a catalog total of 0", customer, order("EUR", line(free, 3, "")), "invalid-total", "/lines"},
			{"a producer's total of 0", pricer, order("EUR", line(sku, 3, "0")), "invalid-total", "/lines"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := gw.do(t, tc.bearer, request{path: "/v1/orders", body: tc.body})
				if res.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d, want 422: %s", res.status, res.body)
				}
				p := res.problem(t)
				if p.Type != "https://tradewind.dev/problems/"+tc.slug || p.Field != tc.field || p.In != "body" {
					t.Errorf("problem %s field %q in %q, want %s at %s in body: %s", p.Type, p.Field, p.In, tc.slug, tc.field, res.body)
				}
			})
		}
	})

	// placed waits for the order to be confirmed and its payment captured,
	// and returns the captured amount and the recorded lines.
	placed := func(t *testing.T, id string) (captured int64, lines []events.OrderLine) {
		t.Helper()
		s := s.For(t)
		s.WaitOrder(id, events.StatusConfirmed, wait)
		s.Eventually(wait, "payment of "+id+" captured", func() bool {
			return s.Query(&captured, `SELECT amount FROM payments.payment_ops WHERE order_id = $1 AND op = 'capture'`, id)
		})
		var raw []byte
		s.Query(&raw, `SELECT lines FROM orders.orders WHERE order_id = $1`, id)
		if err := json.Unmarshal(raw, &lines); err != nil {
			t.Fatal(err)
		}
		return captured, lines
	}

	t.Run("a customer's order is priced and captured at the catalog's price", func(t *testing.T) {
		for name, body := range map[string]string{
			"unit_price omitted":                order("EUR", line(sku, 2, "")),
			"unit_price equal to the catalog's": order("EUR", line(sku, 2, "100000")),
		} {
			t.Run(name, func(t *testing.T) {
				a := gw.do(t, customer, request{path: "/v1/orders", body: body}).accepted(t)
				captured, lines := placed(t, a.ID)
				if captured != 200000 || len(lines) != 1 || lines[0].UnitPrice != 100000 {
					t.Errorf("captured %d with lines %+v, want 200000 at unit_price 100000", captured, lines)
				}
			})
		}
	})

	t.Run("an API key with orders:price sets its own price", func(t *testing.T) {
		a := gw.do(t, pricer, request{path: "/v1/orders", body: order("EUR", line(sku, 2, "1"))}).accepted(t)
		captured, lines := placed(t, a.ID)
		if captured != 2 || lines[0].UnitPrice != 1 {
			t.Errorf("captured %d with lines %+v, want 2 at unit_price 1 (the producer's price)", captured, lines)
		}
	})

	t.Run("v2's shipping address and promotion code reach the order and its read model", func(t *testing.T) {
		body := `{"customer_id":"c-1","currency":"EUR","lines":[` + line(sku, 1, "") + `],` +
			`"shipping_address":{"name":"Ada","line1":"1 Kite Hill","city":"London","postal_code":"N6 6","country":"GB"},"promo_code":"KITES-10"}`
		a := gw.do(t, customer, request{path: "/v1/orders", body: body, header: map[string]string{"Accept-Version": "2"}}).accepted(t)
		s := s.For(t)
		var promo string
		var addr []byte
		s.Eventually(wait, "the read model has order "+a.ID, func() bool {
			return s.Query(&promo, `SELECT promo_code FROM public.orders WHERE order_id = $1`, a.ID)
		})
		s.Query(&addr, `SELECT shipping_address FROM public.orders WHERE order_id = $1`, a.ID)
		var got events.ShippingAddress
		_ = json.Unmarshal(addr, &got)
		if promo != "KITES-10" || got.City != "London" || got.Line1 != "1 Kite Hill" {
			t.Errorf("read model promo %q address %s, want KITES-10 in London", promo, addr)
		}
	})
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

const wait = 30 * time.Second
