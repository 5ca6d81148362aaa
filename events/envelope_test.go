package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStructuredJSONCarriesDataAsJSON: browsers and the notification inbox
// read the structured form; JSON data must appear as "data", not base64.
func TestStructuredJSONCarriesDataAsJSON(t *testing.T) {
	e, err := New(OrderPlacedV1, "0190f1d2-0000-7000-8000-000000000001", OrderPlaced{OrderID: "x", Total: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, b64 := m["data_base64"]; b64 {
		t.Fatalf("structured event has data_base64: %s", b)
	}
	data, ok := m["data"].(map[string]any)
	if !ok || data["total"] != float64(7) {
		t.Fatalf("structured event data = %v, want the JSON object", m["data"])
	}
	if !strings.Contains(string(b), `"datacontenttype":"application/json"`) {
		t.Errorf("content type missing: %s", b)
	}
}

// TestNewKeepsDataBytes: a value is marshalled once; json.RawMessage (the
// gateway's already encoded command) is carried byte for byte, not
// encoded again.
func TestNewKeepsDataBytes(t *testing.T) {
	const raw = `{ "order_id": "x",  "total": 7 }`
	cases := map[string]struct {
		data any
		want string
	}{
		"value":          {OrderPlaced{OrderID: "x", Total: 7}, mustMarshal(t, OrderPlaced{OrderID: "x", Total: 7})},
		"raw JSON as is": {json.RawMessage(raw), raw},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := New(OrderPlacedV1, "0190f1d2-0000-7000-8000-000000000001", c.data)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(e.Data()); got != c.want {
				t.Fatalf("data %s, want %s", got, c.want)
			}
			if e.DataBase64 {
				t.Fatal("JSON data marked as binary")
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
