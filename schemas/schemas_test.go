package schemas

import (
	"encoding/json"
	"errors"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tradewind/tradewind/events"
)

func TestEveryTypeHasASchemaAndEverySchemaAType(t *testing.T) {
	byFile := map[string]events.Spec{}
	for _, s := range events.All() {
		byFile[s.SchemaFile()] = s
		b, err := fs.ReadFile(FS(), s.SchemaFile())
		if err != nil {
			t.Errorf("%s: no schema file %s", s.Type(), s.SchemaFile())
			continue
		}
		var doc struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", s.SchemaFile(), err)
			continue
		}
		if doc.ID != s.SchemaURI() {
			t.Errorf("%s: $id = %q, want %q", s.SchemaFile(), doc.ID, s.SchemaURI())
		}
		if doc.Schema != MetaSchema {
			t.Errorf("%s: $schema = %q, want %q", s.SchemaFile(), doc.Schema, MetaSchema)
		}
	}
	names, err := fs.Glob(FS(), "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no embedded schema files")
	}
	for _, name := range names {
		if _, ok := byFile[name]; !ok {
			t.Errorf("schema file %s belongs to no catalogued type", name)
		}
	}
	if _, err := load(); err != nil {
		t.Fatalf("schemas do not compile: %v", err)
	}
}

// TestStringsRefuseControlCharacters checks that every free string in
// every file (no format, enum or const) has a pattern refusing NUL and the
// other control characters (multi-line text may hold tab, LF and CR):
// PostgreSQL refuses NUL in text, so such a value would be accepted and
// then fail in every consumer.
func TestStringsRefuseControlCharacters(t *testing.T) {
	var check func(file, at string, v any)
	check = func(file, at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			_, hasFormat := v["format"]
			_, hasEnum := v["enum"]
			_, hasConst := v["const"]
			if v["type"] == "string" && !hasFormat && !hasEnum && !hasConst {
				pat, _ := v["pattern"].(string)
				re, err := regexp.Compile(pat)
				switch {
				case pat == "" || err != nil:
					t.Errorf("%s: string at %s has no pattern refusing control characters", file, at)
				case re.MatchString("a\x00") || re.MatchString("a\x1b") || re.MatchString("a\x7f") || re.MatchString("a\u0085"):
					t.Errorf("%s: string at %s: pattern %s admits control characters", file, at, pat)
				}
			}
			for k, c := range v {
				check(file, at+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				check(file, at+"/[]", c)
			}
		}
	}
	names, _ := fs.Glob(FS(), "*.json")
	for _, name := range names {
		b, _ := fs.ReadFile(FS(), name)
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		check(name, "", doc)
	}
}

// TestObjectsRefuseUnknownProperties checks every object schema in every
// file says additionalProperties: false.
func TestObjectsRefuseUnknownProperties(t *testing.T) {
	var check func(file, at string, v any)
	check = func(file, at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["type"] == "object" && v["additionalProperties"] != false {
				t.Errorf("%s: object at %s lacks additionalProperties: false", file, at)
			}
			for k, c := range v {
				check(file, at+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				check(file, at+"/[]", c)
			}
		}
	}
	names, _ := fs.Glob(FS(), "*.json")
	for _, name := range names {
		b, _ := fs.ReadFile(FS(), name)
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		check(name, "", doc)
	}
}

const (
	validPlace  = `{"customer_id":"c-1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1999},{"sku":"SKU-2","quantity":1,"unit_price":0}],"currency":"EUR"}`
	validPlaced = `{"order_id":"0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10","customer_id":"c-1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1999}],"currency":"EUR","total":3998,"placed_at":"2026-03-04T05:06:07Z","deadline":"2026-03-04T05:21:07.5+01:00"}`
)

func TestValidPayloads(t *testing.T) {
	structs := []struct {
		typ  string
		data any
	}{
		{events.PlaceOrderV1, events.PlaceOrder{CustomerID: "c", Lines: []events.OrderLine{{SKU: "s", Quantity: 10000, UnitPrice: 100000000}}, Currency: "USD"}},
		{events.PlaceOrderV1, events.PlaceOrder{OrderID: "0192F1C4-7F3A-7B61-9C1E-5F0D3F2B9A10", CustomerID: strings.Repeat("ü", 64), Lines: []events.OrderLine{{SKU: "s", Quantity: 1}}, Currency: "JPY"}},
		{events.OrderPlacedV1, events.OrderPlaced{OrderID: "0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10", CustomerID: "c", Lines: []events.OrderLine{{SKU: "s", Quantity: 1, UnitPrice: 5}}, Currency: "EUR", Total: 5, PlacedAt: "2026-01-01T00:00:00Z", Deadline: "2026-01-01T00:15:00Z"}},
	}
	for _, tc := range structs {
		b, err := json.Marshal(tc.data)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(tc.typ, b); err != nil {
			t.Errorf("Validate(%s, %s) = %v", tc.typ, b, err)
		}
	}
	for typ, data := range map[string]string{events.PlaceOrderV1: validPlace, events.OrderPlacedV1: validPlaced} {
		if err := Validate(typ, []byte(data)); err != nil {
			t.Errorf("Validate(%s) = %v", typ, err)
		}
		e, err := events.New(typ, "order-1", json.RawMessage(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateEvent(e); err != nil {
			t.Errorf("ValidateEvent(%s) = %v", typ, err)
		}
	}
}

func TestInvalidPayloads(t *testing.T) {
	place := events.PlaceOrderV1
	placed := events.OrderPlacedV1
	// edit replaces the first occurrence of old in a valid payload.
	edit := func(data, old, new string) string {
		if !strings.Contains(data, old) {
			t.Fatalf("test payload lacks %q", old)
		}
		return strings.Replace(data, old, new, 1)
	}
	cases := []struct {
		name    string
		typ     string
		data    string
		field   string
		problem string // substring
	}{
		{"missing customer", place, edit(validPlace, `"customer_id":"c-1",`, ""), "/customer_id", "required"},
		{"missing lines", place, `{"customer_id":"c","currency":"EUR"}`, "/lines", "required"},
		{"missing line quantity", place, edit(validPlace, `"quantity":1,`, ""), "/lines/1/quantity", "required"},
		{"missing everything", place, `{}`, "/customer_id", "also missing: lines, currency"},
		{"customer not a string", place, edit(validPlace, `"c-1"`, `42`), "/customer_id", "must be string but found number"},
		{"empty customer", place, edit(validPlace, `"c-1"`, `""`), "/customer_id", "at least 1 characters"},
		{"long customer", place, edit(validPlace, `"c-1"`, `"`+strings.Repeat("x", 65)+`"`), "/customer_id", "at most 64 characters long but has 65"},
		{"lines not an array", place, `{"customer_id":"c","lines":{},"currency":"EUR"}`, "/lines", "must be array but found object"},
		{"no lines", place, `{"customer_id":"c","lines":[],"currency":"EUR"}`, "/lines", "at least 1 items but has 0"},
		{"too many lines", place, `{"customer_id":"c","lines":[` + strings.Repeat(`{"sku":"s","quantity":1,"unit_price":1},`, 100) + `{"sku":"s","quantity":1,"unit_price":1}],"currency":"EUR"}`, "/lines", "at most 100 items but has 101"},
		{"quantity a string", place, edit(validPlace, `"quantity":2`, `"quantity":"2"`), "/lines/0/quantity", "must be integer but found string"},
		{"fractional quantity", place, edit(validPlace, `"quantity":2`, `"quantity":1.5`), "/lines/0/quantity", "must be integer but found number"},
		{"zero quantity", place, edit(validPlace, `"quantity":2`, `"quantity":0`), "/lines/0/quantity", "must be >= 1 but found 0"},
		{"negative quantity", place, edit(validPlace, `"quantity":1`, `"quantity":-3`), "/lines/1/quantity", "must be >= 1 but found -3"},
		{"quantity too big", place, edit(validPlace, `"quantity":2`, `"quantity":10001`), "/lines/0/quantity", "must be <= 10000 but found 10001"},
		{"huge unit price", place, edit(validPlace, `"unit_price":1999`, `"unit_price":1e400`), "/lines/0/unit_price", "must be <= 100000000 but found 1e+400"},
		{"price beyond int64", place, edit(validPlace, `"unit_price":1999`, `"unit_price":92233720368547758070`), "/lines/0/unit_price", "must be <= 100000000 but found 92233720368547758070"},
		{"negative price", place, edit(validPlace, `"unit_price":0`, `"unit_price":-1`), "/lines/1/unit_price", "must be >= 0 but found -1"},
		{"empty sku", place, edit(validPlace, `"SKU-1"`, `""`), "/lines/0/sku", "at least 1 characters"},
		{"NUL in sku", place, edit(validPlace, `"SKU-1"`, `"SKU-1\u0000"`), "/lines/0/sku", "must match"},
		{"escape in customer", place, edit(validPlace, `"c-1"`, `"c-1\u001b[2J"`), "/customer_id", "must match"},
		{"C1 control in sku", place, edit(validPlace, `"SKU-1"`, `"SKU-1\u0085"`), "/lines/0/sku", "must match"},
		{"unknown field", place, edit(validPlace, `"currency"`, `"discount":5,"currency"`), "/discount", "not an allowed property"},
		{"unknown line field", place, edit(validPlace, `"sku":"SKU-2"`, `"sku":"SKU-2","note":"x"`), "/lines/1/note", "not an allowed property"},
		{"lower-case currency", place, edit(validPlace, `"EUR"`, `"eur"`), "/currency", `must match ^[A-Z]{3}$ but found "eur"`},
		{"long currency", place, edit(validPlace, `"EUR"`, `"EURO"`), "/currency", "must match"},
		{"currency a number", place, edit(validPlace, `"EUR"`, `978`), "/currency", "must be string"},
		{"bad order uuid", place, edit(validPlace, `{"customer_id"`, `{"order_id":"not-a-uuid","customer_id"`), "/order_id", "must be a valid uuid"},
		{"uuid without dashes", place, edit(validPlace, `{"customer_id"`, `{"order_id":"0192f1c47f3a7b619c1e5f0d3f2b9a10","customer_id"`), "/order_id", "must be a valid uuid"},
		{"not an object", place, `[1,2]`, "", "must be object but found array"},
		{"null", place, `null`, "", "must be object but found null"},
		{"invalid JSON", place, `{"customer_id":`, "", "invalid JSON"},
		{"trailing garbage", place, validPlace + `x`, "", "invalid JSON"},
		{"invalid UTF-8", place, edit(validPlace, `"c-1"`, "\"c\xff\""), "", "UTF-8"},
		{"empty data", place, ``, "", "no data"},
		{"placed bad uuid", placed, edit(validPlaced, `"0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10"`, `"0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a1g"`), "/order_id", "must be a valid uuid"},
		{"placed missing deadline", placed, edit(validPlaced, `,"deadline":"2026-03-04T05:21:07.5+01:00"`, ""), "/deadline", "required"},
		{"placed bad date", placed, edit(validPlaced, `"2026-03-04T05:06:07Z"`, `"2026-03-04 05:06"`), "/placed_at", "must be a valid date-time"},
		{"placed negative total", placed, edit(validPlaced, `"total":3998`, `"total":-1`), "/total", "must be >= 0 but found -1"},
		{"placed order id missing", placed, edit(validPlaced, `"order_id":"0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10",`, ""), "/order_id", "required"},
		{"deepest error wins", placed, edit(edit(validPlaced, `"total":3998`, `"total":-1`), `"quantity":2`, `"quantity":0`), "/lines/0/quantity", "must be >= 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.typ, []byte(tc.data))
			if err == nil {
				t.Fatalf("Validate succeeded on %s", tc.data)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
			}
			if ve.Type != tc.typ || ve.Field != tc.field {
				t.Errorf("Type, Field = %q, %q; want %q, %q (error: %v)", ve.Type, ve.Field, tc.typ, tc.field, err)
			}
			if !strings.Contains(ve.Problem, tc.problem) {
				t.Errorf("Problem = %q, want it to mention %q", ve.Problem, tc.problem)
			}
			want := tc.typ + ": "
			if tc.field != "" {
				want += tc.field + ": "
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

func TestErrorMessageFormat(t *testing.T) {
	err := Validate(events.PlaceOrderV1, []byte(strings.Replace(validPlace, `"quantity":2`, `"quantity":0`, 1)))
	if got, want := err.Error(), "com.tradewind.orders.place.v1: /lines/0/quantity: must be >= 1 but found 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestUnknownType(t *testing.T) {
	cases := []struct {
		typ  string
		want string
	}{
		{"com.tradewind.orders.place.v9", "unknown message type com.tradewind.orders.place.v9 (known: v1, v2)"},
		{"com.tradewind.orders.shipped.v1", "unknown message type com.tradewind.orders.shipped.v1"},
		{"com.example.whatever", "unknown message type com.example.whatever"},
		{"", "unknown message type "},
	}
	for _, tc := range cases {
		err := Validate(tc.typ, []byte(`{}`))
		if !errors.Is(err, ErrUnknownType) {
			t.Errorf("Validate(%q) = %v, want ErrUnknownType", tc.typ, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Validate(%q) = %q, want %q", tc.typ, err.Error(), tc.want)
		}
	}

	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("com.tradewind.orders.place.v3")
	if err := ValidateEvent(&e); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "(known: v1, v2)") {
		t.Errorf("ValidateEvent(unknown type) = %v", err)
	}
}

func TestValidateEventEnvelope(t *testing.T) {
	newEvent := func(t *testing.T) *event.Event {
		t.Helper()
		e, err := events.New(events.PlaceOrderV1, "", json.RawMessage(validPlace))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	t.Run("wrong schema version", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataSchema("https://schemas.tradewind.dev/orders.place.v2.json")
		err := ValidateEvent(e)
		if !errors.Is(err, ErrWrongSchema) {
			t.Fatalf("ValidateEvent = %v, want ErrWrongSchema", err)
		}
		for _, s := range []string{"wrong schema version", "orders.place.v2.json", "https://schemas.tradewind.dev/orders.place.v1.json"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
	t.Run("schema of another type", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataSchema(events.MustLookup(events.OrderPlacedV1).SchemaURI())
		if err := ValidateEvent(e); !errors.Is(err, ErrWrongSchema) {
			t.Errorf("ValidateEvent = %v, want ErrWrongSchema", err)
		}
	})
	t.Run("no dataschema", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataSchema("")
		if err := ValidateEvent(e); err != nil {
			t.Errorf("ValidateEvent = %v", err)
		}
	})
	t.Run("no datacontenttype", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataContentType("")
		if err := ValidateEvent(e); err != nil {
			t.Errorf("ValidateEvent = %v", err)
		}
	})
	t.Run("json with charset", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataContentType("application/json; charset=utf-8")
		if err := ValidateEvent(e); err != nil {
			t.Errorf("ValidateEvent = %v", err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		e := newEvent(t)
		e.SetDataContentType("text/plain")
		if err := ValidateEvent(e); !errors.Is(err, ErrContentType) {
			t.Errorf("ValidateEvent = %v, want ErrContentType", err)
		}
	})
	t.Run("invalid data", func(t *testing.T) {
		e := newEvent(t)
		e.DataEncoded = []byte(`{"customer_id":"c","lines":[],"currency":"EUR"}`)
		var ve *ValidationError
		if err := ValidateEvent(e); !errors.As(err, &ve) || ve.Field != "/lines" {
			t.Errorf("ValidateEvent = %v, want a *ValidationError at /lines", err)
		}
	})
	t.Run("no data", func(t *testing.T) {
		e := newEvent(t)
		e.DataEncoded = nil
		var ve *ValidationError
		if err := ValidateEvent(e); !errors.As(err, &ve) || ve.Field != "" {
			t.Errorf("ValidateEvent = %v, want a *ValidationError", err)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if err := ValidateEvent(nil); err == nil {
			t.Error("ValidateEvent(nil) succeeded")
		}
	})
}
