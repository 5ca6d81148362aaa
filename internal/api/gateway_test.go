package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestBadInputIsAPreciseClientError(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway(func(c *apiConfig) { c.BodyLimit = 4096 })
	key := sys.apiKey(auth.ScopeAll)
	big := `{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"` + strings.Repeat("x", 5000) + `","quantity":1,"unit_price":1}]}`
	cases := []struct {
		name   string
		bearer string
		req    request
		status int
		slug   string
		field  string // JSON pointer, or header name when in is "header"
		in     string
	}{
		{"no credentials", "", request{path: "/v1/orders", body: validOrder}, 401, "unauthenticated", "Authorization", "header"},
		{"unknown API key", "tw_0123456789abcdef_" + strings.Repeat("A", 43), request{path: "/v1/orders", body: validOrder}, 401, "unauthenticated", "Authorization", "header"},
		{"no idempotency key", key, request{path: "/v1/orders", body: validOrder, noKey: true}, 400, "idempotency-key-required", "Idempotency-Key", "header"},
		{"wrong content type", key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported-media-type", "Content-Type", "header"},
		{"missing content type", key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Content-Type": ""}}, 415, "unsupported-media-type", "Content-Type", "header"},
		{"latin-1 charset", key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}}, 415, "unsupported-media-type", "Content-Type", "header"},
		{"oversize body", key, request{path: "/v1/orders", body: big}, 413, "body-too-large", "", ""},
		{"malformed JSON", key, request{path: "/v1/orders", body: `{"customer_id":"c-1",`}, 400, "malformed-body", "", ""},
		{"trailing data", key, request{path: "/v1/orders", body: validOrder + `{}`}, 400, "malformed-body", "", ""},
		{"invalid UTF-8", key, request{path: "/v1/orders", body: "{\"customer_id\":\"c-\xff\"}"}, 400, "malformed-body", "", ""},
		{"not an object", key, request{path: "/v1/orders", body: `[1,2]`}, 422, "invalid-field", "", "body"},
		{"unknown field", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"currency"`, `"colour":"red","currency"`, 1)}, 422, "invalid-field", "/colour", "body"},
		{"wrong type", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"quantity":2`, `"quantity":"2"`, 1)}, 422, "invalid-field", "/lines/0/quantity", "body"},
		{"missing field", key, request{path: "/v1/orders", body: `{"customer_id":"c-1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`}, 422, "invalid-field", "/currency", "body"},
		{"negative quantity", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"quantity":2`, `"quantity":-2`, 1)}, 422, "invalid-field", "/lines/0/quantity", "body"},
		{"huge number", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"unit_price":1250`, `"unit_price":1e400`, 1)}, 422, "invalid-field", "/lines/0/unit_price", "body"},
		{"huge integer", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"quantity":2`, `"quantity":123456789012345678901234567890`, 1)}, 422, "invalid-field", "/lines/0/quantity", "body"},
		{"bad order id in path", key, request{path: "/v1/orders/not-a-uuid/cancel"}, 422, "invalid-field", "/order_id", "path"},
		{"body contradicts path", key, request{path: "/v1/inventory/SKU-1/restock", body: `{"sku":"SKU-2","quantity":5}`}, 422, "invalid-field", "/sku", "body"},
		{"unknown schema version", key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Accept-Version": "9"}}, 400, "unsupported-version", "Accept-Version", "header"},
		{"unacceptable response type", key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Accept": "text/html"}}, 406, "not-acceptable", "Accept", "header"},
		{"v1 refuses v2 fields", key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"currency"`, `"promo_code":"X","currency"`, 1), header: map[string]string{"Accept-Version": "1"}}, 422, "invalid-field", "/promo_code", "body"},
		{"scope missing", sys.apiKey(auth.ScopeCatalogWrite), request{path: "/v1/orders", body: validOrder}, 403, "forbidden", "", ""},
		{"customer orders for another", userToken(t, "c-2", auth.RoleCustomer), request{path: "/v1/orders", body: validOrder}, 403, "forbidden", "/customer_id", "body"},
		{"customer cannot upsert products", userToken(t, "c-1", auth.RoleCustomer), request{path: "/v1/products", body: `{}`}, 403, "forbidden", "", ""},
		{"customer cancels an unknown order", userToken(t, "c-1", auth.RoleCustomer), request{path: "/v1/orders/0190f1d2-0000-7000-8000-000000000001/cancel"}, 404, "not-found", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := gw.do(t, tc.bearer, tc.req)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if p.Type != "https://tradewind.dev/problems/"+tc.slug || p.Status != tc.status {
				t.Errorf("problem type %s status %d, want %s", p.Type, p.Status, tc.slug)
			}
			got := p.Field
			if tc.in == "header" {
				got = p.Header
			}
			if got != tc.field || p.In != tc.in {
				t.Errorf("names %q in %q, want %q in %q (detail: %s)", got, p.In, tc.field, tc.in, p.Detail)
			}
			if p.RequestID == "" || p.RequestID != res.header.Get("X-Request-Id") || p.Detail == "" {
				t.Errorf("problem lacks detail or request id: %+v", p)
			}
		})
	}
	if n := streamMsgs(t, sys.js, broker.StreamCommands); n != 0 {
		t.Errorf("%d commands published for bad requests", n)
	}
}

func TestAcceptedCommandIsDurablyInTheStream(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	key := sys.apiKey(auth.ScopeAll)
	cases := []struct {
		name, path, body, ceType, location string
		header                             map[string]string
	}{
		{"place order (newest version)", "/v1/orders", validOrder, events.PlaceOrderV2, "/v1/orders/", nil},
		{"place order v2 with address", "/v1/orders", strings.Replace(validOrder, `"currency"`, `"promo_code":"WELCOME10","shipping_address":{"name":"A","line1":"1 Road","city":"Paris","postal_code":"75001","country":"FR"},"currency"`, 1), events.PlaceOrderV2, "/v1/orders/", nil},
		{"cancel order", "/v1/orders/0190f1d2-0000-7000-8000-000000000001/cancel", "", events.CancelOrderV1, "/v1/orders/0190f1d2-0000-7000-8000-000000000001", nil},
		{"upsert product", "/v1/products", `{"sku":"SKU-9","name":"Kite","price":1999,"currency":"EUR"}`, events.UpsertProductV1, "/v1/products/SKU-9", nil},
		{"upsert category", "/v1/categories", `{"category_id":"kites","name":"Kites"}`, events.UpsertCategoryV1, "/v1/categories/kites", nil},
		{"restock", "/v1/inventory/SKU-9/restock", `{"quantity":5}`, events.RestockV1, "/v1/inventory/SKU-9", nil},
		{"upsert customer", "/v1/customers", `{"customer_id":"c-7","email":"c7@example.com","name":"Cee"}`, events.UpsertCustomerV1, "/v1/customers/c-7", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := gw.do(t, key, request{path: tc.path, body: tc.body, header: map[string]string{
				"X-Request-Id": "req-" + strconv.Itoa(len(tc.name)), "X-Correlation-Id": "corr-42",
				"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}})
			a := res.accepted(t)
			if a.Type != tc.ceType || !strings.HasPrefix(a.Location, tc.location) || res.header.Get("Location") != a.Location {
				t.Errorf("accepted %+v, want type %s at %s", a, tc.ceType, tc.location)
			}
			stream, seqStr, _ := strings.Cut(a.Position, ":")
			seq, err := strconv.ParseUint(seqStr, 10, 64)
			if stream != broker.StreamCommands || err != nil || res.header.Get("Tradewind-Position") != a.Position {
				t.Fatalf("position %q", a.Position)
			}
			m := streamMsg(t, sys.js, stream, seq)
			ev, err := cenats.Decode(m.Header, m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID() != a.CommandID || ev.Type() != tc.ceType || m.Header.Get("Nats-Msg-Id") != a.CommandID || ev.Subject() != a.ID {
				t.Errorf("stream has %s %s (subject %s), answer said %s %s (id %s)", ev.ID(), ev.Type(), ev.Subject(), a.CommandID, a.Type, a.ID)
			}
			if c := events.StringExt(ev, events.ExtCorrelationID); c != "corr-42" {
				t.Errorf("correlation id %q did not reach the CloudEvent", c)
			}
			if tp := events.StringExt(ev, events.ExtTraceparent); !strings.Contains(tp, "0af7651916cd43dd8448eb211c80319c") {
				t.Errorf("traceparent %q did not reach the CloudEvent", tp)
			}
			if res.header.Get("X-Request-Id") != "req-"+strconv.Itoa(len(tc.name)) {
				t.Errorf("request id not echoed: %q", res.header.Get("X-Request-Id"))
			}
		})
	}
}

func TestIdempotencyKeyReplaysAndRefuses(t *testing.T) {
	sys := newSystem(t)
	gw1, gw2 := sys.gateway(), sys.gateway()
	key := sys.apiKey(auth.ScopeOrdersWrite, auth.ScopeOrdersPrice)
	idem := map[string]string{"Idempotency-Key": "order-123"}
	first := gw1.do(t, key, request{path: "/v1/orders", body: validOrder, header: idem})
	a := first.accepted(t)
	for name, gw := range map[string]*gateway{"same instance": gw1, "other instance": gw2} {
		t.Run(name, func(t *testing.T) {
			again := gw.do(t, key, request{path: "/v1/orders", body: validOrder, header: idem})
			if again.status != first.status || !bytes.Equal(again.body, first.body) {
				t.Fatalf("replay %d %s, want %d %s", again.status, again.body, first.status, first.body)
			}
			if again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Location") != first.header.Get("Location") ||
				again.header.Get("Tradewind-Position") != first.header.Get("Tradewind-Position") {
				t.Errorf("replay headers %v", again.header)
			}
		})
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Error("first answer marked as replayed")
	}
	if n := streamMsgs(t, sys.js, broker.StreamCommands); n != 1 {
		t.Errorf("%d commands in the stream, want 1", n)
	}
	other := gw2.do(t, key, request{path: "/v1/orders", body: strings.Replace(validOrder, `"quantity":2`, `"quantity":3`, 1), header: idem})
	if other.status != http.StatusUnprocessableEntity || other.problem(t).Type != "https://tradewind.dev/problems/idempotency-key-reused" {
		t.Errorf("different request under the same key: %d %s", other.status, other.body)
	}
	// Keys are per caller: another caller's identical key is a new command.
	b := gw1.do(t, sys.apiKey(auth.ScopeOrdersWrite, auth.ScopeOrdersPrice), request{path: "/v1/orders", body: validOrder, header: idem}).accepted(t)
	if b.CommandID == a.CommandID {
		t.Error("two callers' commands share an id")
	}
	// Past the store's memory, the same request republishes the same id,
	// which JetStream drops.
	if _, err := testenv.Pool(t).Exec(context.Background(), `DELETE FROM core.idempotency`); err != nil {
		t.Fatal(err)
	}
	late := gw1.do(t, key, request{path: "/v1/orders", body: validOrder, header: idem}).accepted(t)
	if late.CommandID != a.CommandID || late.Position != a.Position {
		t.Errorf("forgotten key republished as %+v, first was %+v", late, a)
	}
	if n := streamMsgs(t, sys.js, broker.StreamCommands); n != 2 {
		t.Errorf("%d commands in the stream, want 2", n)
	}
}

func TestNATSUnreachableIs503NeverA202(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	key := sys.apiKey(auth.ScopeAll)
	sys.emb.Shutdown()
	idem := map[string]string{"Idempotency-Key": "while-down"}
	res := gw.do(t, key, request{path: "/v1/orders", body: validOrder, header: idem})
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q): %s", res.status, res.header.Get("Retry-After"), res.body)
	}
	var n int
	if err := testenv.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM core.idempotency WHERE idem_key = 'while-down'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a failed command left its idempotency key claimed; the retry would be refused")
	}
}

func TestVersionNegotiationAndDeprecation(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	key := sys.apiKey(auth.ScopeAll)
	cases := []struct {
		acceptVersion string
		ceType        string
		deprecated    bool
	}{
		{"", events.PlaceOrderV2, false},
		{"2", events.PlaceOrderV2, false},
		{"v2", events.PlaceOrderV2, false},
		{"1", events.PlaceOrderV1, true},
		{"V1", events.PlaceOrderV1, true},
	}
	for _, tc := range cases {
		t.Run("Accept-Version="+tc.acceptVersion, func(t *testing.T) {
			res := gw.do(t, key, request{path: "/v1/orders", body: validOrder, header: map[string]string{"Accept-Version": tc.acceptVersion}})
			a := res.accepted(t)
			if a.Type != tc.ceType {
				t.Errorf("published %s, want %s", a.Type, tc.ceType)
			}
			dep, sunset := res.header.Get("Deprecation"), res.header.Get("Sunset")
			if tc.deprecated != (dep != "" && sunset != "") || tc.deprecated != strings.Contains(res.header.Get("Link"), "successor-version") {
				t.Errorf("Deprecation %q Sunset %q Link %q, want deprecated=%v", dep, sunset, res.header.Get("Link"), tc.deprecated)
			}
			if dep != "" && !strings.HasPrefix(dep, "@") {
				t.Errorf("Deprecation %q is not an RFC 9745 date", dep)
			}
		})
	}
}

func TestPanicAnswers500WithRequestID(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	h := gw.srv.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := newRecorder()
	req, _ := http.NewRequest(http.MethodPost, "/v1/x", nil)
	req.Header.Set("X-Request-Id", "req-panic")
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if res.status != 500 {
		t.Fatalf("status %d", res.status)
	}
	if p := res.problem(t); p.RequestID != "req-panic" || p.Status != 500 {
		t.Errorf("problem %+v", p)
	}
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
