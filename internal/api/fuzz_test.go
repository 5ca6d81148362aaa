package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/schemas"
)

// FuzzDecodeCommand feeds arbitrary bodies and content types through the
// gateway's request decoding (content type, size limit, UTF-8, JSON,
// schema): it must never panic, and every refusal is a 4xx problem.
func FuzzDecodeCommand(f *testing.F) {
	seeds := []string{
		`{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`,
		`{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"S","quantity":1e400,"unit_price":-1}]}`,
		`{"a":`, `[]`, `null`, `"x"`, "{\"customer_id\":\"\xff\"}", `{"lines":[[[[[[]]]]]]}`, `{} {}`,
		`{"customer_id":"c","currency":"EUR","lines":[{"sku":"s","quantity":1,"unit_price":0}],"shipping_address":{"name":"n","line1":"l","city":"c","postal_code":"p","country":"FR"},"promo_code":"P"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{}`), "application/json; charset=latin1")
	f.Add([]byte(`{}`), "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/orders", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		b, p := readBody(w, r, 4096, false)
		if p == nil {
			var doc map[string]any
			if doc, p = parseObject(b); p == nil {
				data, err := json.Marshal(doc)
				if err != nil {
					t.Fatalf("re-encode a decoded body: %v", err)
				}
				for _, typ := range []string{events.PlaceOrderV1, events.PlaceOrderV2} {
					p := validate(typ, doc, nil)
					if p != nil && (p.Status < 400 || p.Status > 499) {
						t.Fatalf("status %d for %q", p.Status, body)
					}
					// The decoded document and the bytes published from it
					// must get the same verdict.
					if err := schemas.Validate(typ, data); (err == nil) != (p == nil) {
						t.Fatalf("%s: the document's verdict (%v) differs from its encoding's (%v) for %q", typ, p, err, body)
					}
				}
				return
			}
		}
		if p.Status < 400 || p.Status > 499 || p.Detail == "" {
			t.Fatalf("problem %+v for %q (%s)", p, body, strconv.Quote(contentType))
		}
	})
}
