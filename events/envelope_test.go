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
