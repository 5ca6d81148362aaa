package readapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func orderID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", n) }

// system publishes a small dataset, runs the projections and serves the
// read API; it returns the server's URL and the last position.
func system(t *testing.T, wait time.Duration) (string, uint64, func(ceType, subject string, data any) uint64) {
	t.Helper()
	_, _, js := testenv.JetStream(t)
	pool := testenv.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	publish := func(ceType, subject string, data any) uint64 {
		t.Helper()
		at = at.Add(time.Hour)
		ev, err := events.New(ceType, subject, data, events.WithTime(at))
		if err != nil {
			t.Fatal(err)
		}
		ack, err := broker.Publish(ctx, js, ev)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	publish(events.ProductUpsertedV1, "PH-1", events.Product{SKU: "PH-1", Name: "Aurora phone", Description: "bright", Price: 100, Currency: "EUR"})
	publish(events.ProductUpsertedV1, "CB-1", events.Product{SKU: "CB-1", Name: "100% cable", Description: "for any phone", Price: 10, Currency: "EUR"})
	publish(events.RestockedV1, "PH-1", events.Restocked{SKU: "PH-1", Quantity: 4, OnHand: 4})
	publish(events.CustomerUpsertedV1, "c-1", events.Customer{CustomerID: "c-1", Email: "a@example.com", Name: "Ada", Country: "GB"})
	publish(events.CustomerUpsertedV1, "c-1", events.Customer{CustomerID: "c-1", Email: "a@example.com", Name: "Ada", Country: "FR"})
	for i := 1; i <= 5; i++ {
		placed := at.Add(time.Hour)
		publish(events.OrderPlacedV1, orderID(i), events.OrderPlaced{OrderID: orderID(i), CustomerID: "c-1", Currency: "EUR", Total: 100,
			Lines: []events.OrderLine{{SKU: "PH-1", Quantity: 1, UnitPrice: 100}}, PlacedAt: placed.Format(time.RFC3339), Deadline: placed.Add(time.Hour).Format(time.RFC3339)})
	}
	last := publish(events.OrderConfirmedV1, orderID(1), events.OrderConfirmed{OrderID: orderID(1), CustomerID: "c-1", Currency: "EUR", Total: 100,
		AuthorizationID: "a-1", ConfirmedAt: at.Add(time.Hour).Format(time.RFC3339)})
	// After the rest, so as not to move the others' times.
	image := publish(events.ProductImageAddedV1, "PH-1", events.ProductImage{SKU: "PH-1", Hash: strings.Repeat("c", 64), ContentType: "image/jpeg",
		Width: 100, Height: 80, Bytes: 900, URL: "/v1/images/" + strings.Repeat("c", 64) + "/original.jpg", Thumbnails: []events.Thumbnail{}})
	for _, p := range projections.All() {
		cp, err := projector.LiveCheckpoint(ctx, pool, p.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range p.Tables() {
			if _, err := pool.Exec(ctx, `TRUNCATE `+projector.PhysicalTable(tb, cp.Version)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `UPDATE public.projection_checkpoints SET last_seq = 0, stream_created = NULL WHERE name = $1`, p.Name()); err != nil {
			t.Fatal(err)
		}
	}
	g, err := projector.NewGroup(projections.All(), js, pool, projector.GroupConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, p := range projections.All() {
		if _, err := projector.WaitFor(ctx, pool, p.Name(), last, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := projector.WaitFor(ctx, pool, projections.ProductSearch{}.Name(), image, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	api, err := readapi.New(readapi.Config{Pool: pool, WaitTimeout: wait})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, last, publish
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func get(t *testing.T, u string) answer {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: %d, not a JSON object: %q", u, resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET %s: %d with content type %q, want problem+json", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return answer{resp.StatusCode, resp.Header, body}
}

func TestReadRoutesAnswerOrExplain(t *testing.T) {
	base, last, _ := system(t, 200*time.Millisecond)
	cases := []struct {
		path   string
		status int
		check  func(t *testing.T, a answer)
	}{
		{"/v1/orders/" + orderID(1), 200, func(t *testing.T, a answer) {
			if a.body["status"] != "confirmed" {
				t.Errorf("status = %v", a.body["status"])
			}
		}},
		{"/v1/orders/" + orderID(1) + "?as_of=2026-03-01T16:30:00Z", 200, func(t *testing.T, a answer) {
			if a.body["status"] != "pending" {
				t.Errorf("as of before its confirmation, status = %v, want pending", a.body["status"])
			}
		}},
		{"/v1/orders/" + orderID(99), 404, nil},
		{"/v1/orders/not-a-uuid", 400, nil},
		{"/v1/orders/" + orderID(1) + "?as_of=yesterday", 400, nil},
		{"/v1/orders/" + orderID(1) + "/timeline", 200, func(t *testing.T, a answer) {
			if steps := a.body["steps"].([]any); len(steps) != 2 {
				t.Errorf("%d steps, want 2", len(steps))
			}
		}},
		{"/v1/orders?customer_id=c-1&limit=0", 400, nil},
		{"/v1/orders?limit=100000", 400, nil},
		{"/v1/orders?limit=abc", 400, nil},
		{"/v1/orders?cursor=%27%3B--", 400, nil},
		{"/v1/orders?cursor=eyJ0IjoxfQ", 400, nil},
		{"/v1/orders?status=lost", 400, nil},
		{"/v1/inventory/PH-1", 200, func(t *testing.T, a answer) {
			if a.body["available"] != 4.0 || a.body["low_stock"] != true {
				t.Errorf("inventory = %v", a.body)
			}
		}},
		{"/v1/inventory/NOPE", 404, nil},
		// The Location of POST /v1/products.
		{"/v1/products/PH-1", 200, func(t *testing.T, a answer) {
			if a.body["sku"] != "PH-1" || a.body["name"] == "" {
				t.Errorf("product = %v", a.body)
			}
			// Its images, from catalog.product_image_added.
			if ims, _ := a.body["images"].([]any); len(ims) != 1 || ims[0].(map[string]any)["hash"] != strings.Repeat("c", 64) {
				t.Errorf("images = %v", a.body["images"])
			}
		}},
		{"/v1/products/NOPE", 404, nil},
		{"/v1/products/search?q=phone", 200, func(t *testing.T, a answer) {
			ps := a.body["products"].([]any)
			if len(ps) != 2 || ps[0].(map[string]any)["sku"] != "PH-1" {
				t.Errorf("ranked hits = %v, want PH-1 (name) before CB-1 (description)", ps)
			}
		}},
		{"/v1/products/search?q=" + url.QueryEscape(`'); DROP TABLE proj.orders_v1; -- "unbalanced`), 200, nil},
		{"/v1/products/search?q=" + url.QueryEscape(`!!&|:*()`), 200, nil},
		{"/v1/products/search", 400, nil},
		{"/v1/products/search?q=phone&limit=-1", 400, nil},
		{"/v1/products/autocomplete?prefix=aur", 200, func(t *testing.T, a answer) {
			if ps := a.body["products"].([]any); len(ps) != 1 {
				t.Errorf("hits = %v", ps)
			}
		}},
		{"/v1/products/autocomplete?prefix=" + url.QueryEscape("%"), 200, func(t *testing.T, a answer) {
			if ps := a.body["products"].([]any); len(ps) != 0 {
				t.Errorf("%% must be literal, got %v", ps)
			}
		}},
		{"/v1/products/autocomplete?prefix=" + url.QueryEscape("100%"), 200, func(t *testing.T, a answer) {
			if ps := a.body["products"].([]any); len(ps) != 1 {
				t.Errorf("hits = %v, want the 100%% cable", ps)
			}
		}},
		{"/v1/customers/c-1/history", 200, func(t *testing.T, a answer) {
			if vs := a.body["versions"].([]any); len(vs) != 2 {
				t.Errorf("versions = %v", vs)
			}
		}},
		{"/v1/customers/c-1/history?as_of=2026-03-01T13:30:00Z", 200, func(t *testing.T, a answer) {
			vs := a.body["versions"].([]any)
			if len(vs) != 1 || vs[0].(map[string]any)["country"] != "GB" {
				t.Errorf("as of between the versions: %v, want the GB one", vs)
			}
		}},
		{"/v1/customers/nobody/history", 404, nil},
		{"/v1/analytics/sales?from=2026-03-01&to=2026-03-31", 200, func(t *testing.T, a answer) {
			ds := a.body["days"].([]any)
			if len(ds) != 1 || ds[0].(map[string]any)["revenue"] != 100.0 {
				t.Errorf("days = %v", ds)
			}
		}},
		{"/v1/analytics/sales?from=2026-03-31&to=2026-03-01", 400, nil},
		{"/v1/analytics/sales?from=March", 400, nil},
		{"/v1/orders/" + orderID(1) + "?after=abc", 400, nil},
		{"/v1/orders/" + orderID(1) + "?as_of_position=5x", 400, nil},
		// Control characters (NUL first: PostgreSQL refuses it in text) and
		// non-canonical UUIDs are the caller's mistake: 400, never 500/503.
		{"/v1/orders/urn:uuid:" + orderID(1), 400, nil},
		{"/v1/orders/%7B" + orderID(1) + "%7D", 400, nil},
		{"/v1/orders/urn:uuid:" + orderID(1) + "/timeline", 400, nil},
		{"/v1/orders?customer_id=c-1%00", 400, nil},
		{"/v1/orders?status=pending%00", 400, nil},
		{"/v1/products/search?q=phone%00", 400, nil},
		{"/v1/products/autocomplete?prefix=aur%00", 400, nil},
		{"/v1/products/autocomplete?prefix=aur%1B", 400, nil},
		{"/v1/analytics/sales?category=c%00", 400, nil},
		{"/v1/customers/c-1%00/history", 400, nil},
		{"/v1/inventory/PH-1%00", 400, nil},
		{"/v1/inventory/PH-1%7F", 400, nil},
		{"/v1/orders/" + orderID(1) + "?after=" + strconv.FormatUint(last+1000, 10), 503, func(t *testing.T, a answer) {
			if a.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			a := get(t, base+tc.path)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %v", a.status, tc.status, a.body)
			}
			if tc.status < 400 {
				if pos, err := strconv.ParseUint(a.header.Get(readapi.HeaderPosition), 10, 64); err != nil || pos == 0 {
					t.Errorf("%s = %q, want the position", readapi.HeaderPosition, a.header.Get(readapi.HeaderPosition))
				}
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

func TestKeysetPagesVisitEveryOrderOnce(t *testing.T) {
	base, _, _ := system(t, time.Second)
	seen := map[string]bool{}
	next := ""
	pages := 0
	for {
		a := get(t, base+"/v1/orders?customer_id=c-1&limit=2&cursor="+next)
		if a.status != 200 {
			t.Fatalf("page %d: %d %v", pages, a.status, a.body)
		}
		pages++
		for _, o := range a.body["orders"].([]any) {
			id := o.(map[string]any)["order_id"].(string)
			if seen[id] {
				t.Errorf("order %s on two pages", id)
			}
			seen[id] = true
		}
		c, _ := a.body["next_cursor"].(string)
		if c == "" {
			break
		}
		next = c
	}
	if len(seen) != 5 || pages != 3 {
		t.Errorf("%d orders in %d pages, want 5 in 3", len(seen), pages)
	}
}

func TestReadAfterWriteWaitsForThePosition(t *testing.T) {
	base, _, publish := system(t, 5*time.Second)
	seq := publish(events.OrderPlacedV1, orderID(42), events.OrderPlaced{OrderID: orderID(42), CustomerID: "c-9", Currency: "EUR", Total: 5,
		Lines: []events.OrderLine{{SKU: "PH-1", Quantity: 1, UnitPrice: 5}}, PlacedAt: "2026-04-01T00:00:00Z", Deadline: "2026-04-01T01:00:00Z"})
	a := get(t, base+"/v1/orders/"+orderID(42)+"?after="+strconv.FormatUint(seq, 10))
	if a.status != 200 {
		t.Fatalf("read after write: %d %v", a.status, a.body)
	}
	if pos, _ := strconv.ParseUint(a.header.Get(readapi.HeaderPosition), 10, 64); pos < seq {
		t.Errorf("position %d, want >= %d", pos, seq)
	}
}

// TestOrderShowsTheV2ShippingAddressAndPromoCode: orders.placed carries
// orders.place v2's shipping address and promotion code; the orders read
// model keeps them and GET /v1/orders/{id} shows them (and omits them for
// an order placed without).
func TestOrderShowsTheV2ShippingAddressAndPromoCode(t *testing.T) {
	base, _, publish := system(t, 5*time.Second)
	addr := &events.ShippingAddress{Name: "Ada Lovelace", Line1: "12 St James's Sq", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	seq := publish(events.OrderPlacedV1, orderID(43), events.OrderPlaced{OrderID: orderID(43), CustomerID: "c-9", Currency: "EUR", Total: 5,
		Lines: []events.OrderLine{{SKU: "PH-1", Quantity: 1, UnitPrice: 5}}, PlacedAt: "2026-04-01T00:00:00Z", Deadline: "2026-04-01T01:00:00Z",
		ShippingAddress: addr, PromoCode: "SPRING-26"})
	a := get(t, base+"/v1/orders/"+orderID(43)+"?after="+strconv.FormatUint(seq, 10))
	if a.status != 200 {
		t.Fatalf("GET: %d %v", a.status, a.body)
	}
	want := map[string]any{"name": addr.Name, "line1": addr.Line1, "city": addr.City, "postal_code": addr.PostalCode, "country": addr.Country}
	if got, _ := a.body["shipping_address"].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("shipping_address = %v, want %v", a.body["shipping_address"], want)
	}
	if a.body["promo_code"] != "SPRING-26" {
		t.Errorf("promo_code = %v, want SPRING-26", a.body["promo_code"])
	}
	plain := get(t, base+"/v1/orders/"+orderID(1))
	if _, ok := plain.body["shipping_address"]; ok {
		t.Errorf("an order placed without an address shows one: %v", plain.body)
	}
	if _, ok := plain.body["promo_code"]; ok {
		t.Errorf("an order placed without a promotion code shows one: %v", plain.body)
	}
}
