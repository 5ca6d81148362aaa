package events

import (
	"encoding/json"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// upcasters maps a CloudEvent type to the function that rewrites an event
// of that type to the next version. This file is the one place where old
// versions are translated: consumers set runner.Config.Upcast = Upcast and
// their handlers see only the newest shape.
var upcasters = map[string]func(*event.Event) (*event.Event, error){
	PlaceOrderV1: placeOrderV1toV2,
}

// Upcast rewrites an event to the newest version of its type, applying
// upcasters in a chain (v1→v2→…). An event already at its newest version
// is returned unchanged. The result keeps the original's id, source,
// subject, time and extensions, so inbox deduplication, correlation and
// ordering are unaffected; only type, dataschema and data change.
//
// Upcasters run after the original was validated against its own schema;
// the result is what the newest schema accepts.
func Upcast(e *event.Event) (*event.Event, error) {
	for range 16 { // bounded: a cycle in the table is a programming error
		up, ok := upcasters[e.Type()]
		if !ok {
			return e, nil
		}
		next, err := up(e)
		if err != nil {
			return nil, fmt.Errorf("upcast %s event %s: %w", e.Type(), e.ID(), err)
		}
		e = next
	}
	return nil, fmt.Errorf("upcast %s event %s: too many steps (cycle in the upcaster table?)", e.Type(), e.ID())
}

// withType copies e with a new type, its schema URI and data.
func withType(e *event.Event, ceType string, data any) (*event.Event, error) {
	spec, ok := Lookup(ceType)
	if !ok {
		return nil, fmt.Errorf("unknown type %q", ceType)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("marshal %s data: %w", ceType, err)
	}
	out := e.Clone()
	out.SetType(ceType)
	out.SetDataSchema(spec.SchemaURI())
	if err := out.SetData(event.ApplicationJSON, raw); err != nil {
		return nil, fmt.Errorf("set %s data: %w", ceType, err)
	}
	return &out, nil
}

// placeOrderV1toV2: v2 only adds optional fields, so the data carries over.
func placeOrderV1toV2(e *event.Event) (*event.Event, error) {
	var v1 PlaceOrder
	if err := DecodeData(e, &v1); err != nil {
		return nil, err
	}
	return withType(e, PlaceOrderV2, PlaceOrderV2Data{
		OrderID:    v1.OrderID,
		CustomerID: v1.CustomerID,
		Lines:      v1.Lines,
		Currency:   v1.Currency,
	})
}
