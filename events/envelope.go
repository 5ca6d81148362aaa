package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Source is the default CloudEvent source of messages Tradewind emits.
const Source = "/tradewind"

// Extension attribute names carried by every Tradewind CloudEvent.
const (
	ExtTraceparent   = "traceparent"
	ExtCorrelationID = "correlationid"
	ExtCausationID   = "causationid"
	ExtPartitionKey  = "partitionkey"
)

// Option adjusts an event built by New.
type Option func(*event.Event)

// WithSource sets the source attribute (producer services name themselves).
func WithSource(src string) Option { return func(e *event.Event) { e.SetSource(src) } }

// WithID sets the event id (producers that retry must reuse their id).
func WithID(id string) Option { return func(e *event.Event) { e.SetID(id) } }

// WithTime sets the time attribute.
func WithTime(t time.Time) Option { return func(e *event.Event) { e.SetTime(t) } }

// WithCorrelation sets the correlation id extension.
func WithCorrelation(id string) Option {
	return func(e *event.Event) { e.SetExtension(ExtCorrelationID, id) }
}

// WithTraceparent sets the W3C traceparent extension.
func WithTraceparent(tp string) Option {
	return func(e *event.Event) {
		if tp != "" {
			e.SetExtension(ExtTraceparent, tp)
		}
	}
}

// CausedBy links an event to the message that caused it: causationid is
// the cause's id, correlationid and traceparent are inherited (correlation
// falls back to the cause's id when the cause has none).
func CausedBy(cause *event.Event) Option {
	return func(e *event.Event) {
		if cause == nil {
			return
		}
		e.SetExtension(ExtCausationID, cause.ID())
		corr := StringExt(cause, ExtCorrelationID)
		if corr == "" {
			corr = cause.ID()
		}
		e.SetExtension(ExtCorrelationID, corr)
		if tp := StringExt(cause, ExtTraceparent); tp != "" {
			e.SetExtension(ExtTraceparent, tp)
		}
	}
}

// New builds a CloudEvent of a catalogued type: a UUIDv7 id, the Tradewind
// source, the current time, JSON data, the schema URI and the partition key
// (the subject). The data is marshalled as JSON, except json.RawMessage,
// which is taken as it is (the encoder refuses it on publish if it is not
// valid JSON); validation against the schema happens when the event is
// published or consumed, not here.
func New(ceType, subject string, data any, opts ...Option) (*event.Event, error) {
	spec, ok := Lookup(ceType)
	if !ok {
		return nil, fmt.Errorf("new event: unknown type %q", ceType)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new event id: %w", err)
	}
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(id.String())
	e.SetSource(Source)
	e.SetType(ceType)
	e.SetTime(time.Now().UTC())
	e.SetDataSchema(spec.SchemaURI())
	if subject != "" {
		e.SetSubject(subject)
		e.SetExtension(ExtPartitionKey, subject)
	}
	raw, ok := data.(json.RawMessage)
	if !ok {
		if raw, err = json.Marshal(data); err != nil {
			return nil, fmt.Errorf("new event %s: marshal data: %w", ceType, err)
		}
	}
	// As []byte: the SDK stores bytes as they are, but encodes any other
	// type (json.RawMessage included) once more.
	if err := e.SetData(event.ApplicationJSON, []byte(raw)); err != nil {
		return nil, fmt.Errorf("new event %s: set data: %w", ceType, err)
	}
	// SetData marks []byte data as binary; ours is JSON text, so the
	// structured encoding must carry it as "data", not "data_base64".
	e.DataBase64 = false
	for _, o := range opts {
		o(&e)
	}
	return &e, nil
}

// StringExt reads a string extension, "" when absent.
func StringExt(e *event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// PartitionKey is the key that orders messages of one aggregate: the
// partitionkey extension, else the subject.
func PartitionKey(e *event.Event) string {
	if k := StringExt(e, ExtPartitionKey); k != "" {
		return k
	}
	return e.Subject()
}

// NATSSubject is the subject an event of a catalogued type is routed to.
func NATSSubject(e *event.Event) (string, error) {
	spec, ok := Lookup(e.Type())
	if !ok {
		return "", fmt.Errorf("route event %s: unknown type %q", e.ID(), e.Type())
	}
	if spec.Kind != Command && e.Subject() == "" {
		return "", fmt.Errorf("route event %s (%s): subject (aggregate id) is required", e.ID(), e.Type())
	}
	return spec.Subject(e.Subject()), nil
}

// DecodeData unmarshals an event's JSON data into v.
func DecodeData(e *event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return fmt.Errorf("decode %s data of event %s: %w", e.Type(), e.ID(), err)
	}
	return nil
}
