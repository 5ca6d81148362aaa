package cenats

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// DefaultMaxPayload is the largest event data Decode accepts, in bytes.
const DefaultMaxPayload = 1 << 20

// structuredOverhead is what a structured message may carry beyond
// maxStructuredFactor times its data: the attributes and extensions.
const (
	structuredOverhead  = 64 << 10
	maxStructuredFactor = 6 // JSON string escapes (\u0001) take six bytes
)

// DecodeError tells why a NATS message is not a valid CloudEvent. Field
// is the header (binary mode) or JSON member (structured mode) at fault,
// "data" for the payload, "event" for a structured document as a whole.
type DecodeError struct {
	Field  string
	Reason string
}

func (e *DecodeError) Error() string { return "cloudevent " + e.Field + ": " + e.Reason }

// Decode reads a NATS message in binary or structured mode into an event,
// accepting at most DefaultMaxPayload bytes of data. Every error is a
// *DecodeError.
func Decode(h nats.Header, data []byte) (*event.Event, error) {
	return DecodeLimit(h, data, DefaultMaxPayload)
}

// DecodeLimit is Decode accepting at most maxPayload bytes of data
// (DefaultMaxPayload when maxPayload <= 0). In structured mode the whole
// document may be at most six times that plus 64 KiB, for the escaping of
// the data and the attributes.
func DecodeLimit(h nats.Header, data []byte, maxPayload int) (e *event.Event, err error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	defer func() {
		// The checks below are meant to make this unreachable; a panic in
		// the SDK on hostile input must still not take the consumer down.
		if r := recover(); r != nil {
			e, err = nil, &DecodeError{Field: "event", Reason: fmt.Sprintf("internal error: %v", r)}
		}
	}()

	m := newMessage(h, data)
	if m.enc == binding.EncodingStructured {
		if limit := structuredLimit(maxPayload); len(data) > limit {
			return nil, &DecodeError{Field: "data", Reason: fmt.Sprintf("structured event of %d bytes exceeds the limit of %d bytes (data limit %d bytes)", len(data), limit, maxPayload)}
		}
	} else if len(data) > maxPayload {
		return nil, oversize(len(data), maxPayload)
	}

	e, err = binding.ToEvent(context.Background(), m)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, de
		}
		return nil, &DecodeError{Field: "event", Reason: err.Error()}
	}
	if e == nil {
		return nil, &DecodeError{Field: "event", Reason: "no event"}
	}

	field := func(attr string) string { return attr } // structured: JSON member names
	if m.enc == binding.EncodingBinary {
		field = func(attr string) string {
			if attr == "data" {
				return attr
			}
			if attr == "datacontenttype" {
				return m.attrField(spec.DataContentType)
			}
			return HeaderPrefix + attr
		}
	}
	if n := len(e.Data()); n > maxPayload {
		return nil, oversize(n, maxPayload)
	}
	if p := checkEvent(e); p != nil {
		return nil, &DecodeError{Field: field(p.attr), Reason: p.reason}
	}
	e.DataBase64 = false // representation detail of the JSON format
	if len(e.DataEncoded) == 0 {
		e.DataEncoded = nil // empty data is no data, in both modes
	}
	return e, nil
}

func oversize(n, limit int) *DecodeError {
	return &DecodeError{Field: "data", Reason: fmt.Sprintf("payload of %d bytes exceeds the limit of %d bytes", n, limit)}
}

func structuredLimit(maxPayload int) int {
	if maxPayload > (math.MaxInt-structuredOverhead)/maxStructuredFactor {
		return math.MaxInt
	}
	return maxPayload*maxStructuredFactor + structuredOverhead
}

// problem is a failed check, named by attribute ("data" for the data).
type problem struct {
	attr   string
	reason string
}

// checkEvent applies the checks every event must pass to be encoded or
// to be returned by Decode: the SDK's validation, CloudEvents 1.0, and
// UTF-8 JSON data when the content type says JSON.
func checkEvent(e *event.Event) *problem {
	if e.Context == nil {
		return &problem{"specversion", "missing event context"}
	}
	if v := e.SpecVersion(); v != event.CloudEventsVersionV1 {
		return &problem{"specversion", fmt.Sprintf("unsupported spec version %q (supported: %s)", v, event.CloudEventsVersionV1)}
	}
	if err := e.Validate(); err != nil {
		var ve event.ValidationError
		if errors.As(err, &ve) && len(ve) > 0 {
			keys := make([]string, 0, len(ve))
			for k := range ve {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool {
				if ri, rj := fieldRank(keys[i]), fieldRank(keys[j]); ri != rj {
					return ri < rj
				}
				return keys[i] < keys[j]
			})
			return &problem{keys[0], ve[keys[0]].Error()}
		}
		return &problem{"event", err.Error()}
	}
	if data := e.Data(); len(data) > 0 && isJSONType(e.DataContentType()) {
		if !utf8.Valid(data) {
			return &problem{"data", fmt.Sprintf("invalid UTF-8 in JSON data (datacontenttype %s)", e.DataContentType())}
		}
		if !json.Valid(data) {
			var raw json.RawMessage
			err := json.Unmarshal(data, &raw) // only to word the error
			return &problem{"data", fmt.Sprintf("malformed JSON data (datacontenttype %s): %v", e.DataContentType(), err)}
		}
	}
	return nil
}

// strictJSON is the JSON event format, read strictly: it gives a
// *DecodeError naming the member at fault, never lets invalid UTF-8
// through, refuses duplicate members, and does not hand untrusted bytes
// to the SDK's own JSON reader. Writing is the SDK's writer, called
// directly: json.Marshal would re-escape the data (& < > as \u0026...),
// changing its bytes.
type strictJSON struct{}

func (strictJSON) MediaType() string { return ContentTypeStructured }
func (strictJSON) Marshal(e *event.Event) ([]byte, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, errors.New("the event does not render as valid JSON")
	}
	return b, nil
}
func (strictJSON) Unmarshal(b []byte, e *event.Event) error {
	ev, err := parseStructured(b)
	if err != nil {
		return err
	}
	*e = *ev
	return nil
}

func malformed(reason string) *DecodeError {
	return &DecodeError{Field: "event", Reason: "malformed JSON event: " + reason}
}

// parseStructured reads a JSON event format document.
func parseStructured(b []byte) (*event.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err.Error())
		}
		key, ok := tok.(string)
		if !ok {
			return nil, malformed("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(fmt.Sprintf("member %q: %v", key, err))
		}
		if _, dup := members[key]; dup {
			return nil, &DecodeError{Field: key, Reason: "member appears more than once"}
		}
		if !utf8.Valid(raw) {
			return nil, &DecodeError{Field: key, Reason: "invalid UTF-8"}
		}
		members[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("data after the end of the JSON object")
	}

	// str reads a string member; null counts as absent.
	str := func(name string) (string, bool, error) {
		raw, ok := members[name]
		if !ok || string(raw) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, &DecodeError{Field: name, Reason: "must be a JSON string"}
		}
		return s, true, nil
	}

	sv, ok, err := str("specversion")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &DecodeError{Field: "specversion", Reason: "missing required attribute"}
	}
	if sv != event.CloudEventsVersionV1 {
		return nil, &DecodeError{Field: "specversion", Reason: fmt.Sprintf("unsupported spec version %q (supported: %s)", sv, event.CloudEventsVersionV1)}
	}

	e := event.New(event.CloudEventsVersionV1)
	for _, a := range specV1.Attributes() {
		k := a.Kind()
		if k == spec.SpecVersion {
			continue
		}
		name := a.Name()
		s, ok, err := str(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			if k.IsRequired() {
				return nil, &DecodeError{Field: name, Reason: "missing required attribute"}
			}
			continue
		}
		v, reason := checkAttr(k, s)
		if reason != "" {
			return nil, &DecodeError{Field: name, Reason: reason}
		}
		if err := a.Set(e.Context, v); err != nil {
			return nil, &DecodeError{Field: name, Reason: err.Error()}
		}
	}

	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "data" || name == "data_base64" || name == "specversion" || spec.V1.Attribute(name) != nil {
			continue
		}
		if reason := checkExtensionName(name); reason != "" {
			return nil, &DecodeError{Field: name, Reason: reason}
		}
		v, ok, reason := extensionValue(members[name])
		if reason != "" {
			return nil, &DecodeError{Field: name, Reason: reason}
		}
		if !ok {
			continue
		}
		if err := e.Context.SetExtension(name, v); err != nil {
			return nil, &DecodeError{Field: name, Reason: err.Error()}
		}
	}

	rawData, hasData := members["data"]
	_, hasB64 := members["data_base64"]
	if hasData && hasB64 {
		return nil, &DecodeError{Field: "data_base64", Reason: "must not be present together with data"}
	}
	switch {
	case hasB64:
		s, ok, err := str("data_base64")
		if err != nil {
			return nil, err
		}
		if ok {
			d, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, &DecodeError{Field: "data_base64", Reason: fmt.Sprintf("invalid base64: %v", err)}
			}
			e.DataEncoded = d
		}
	case hasData:
		if sdkJSONType(e.DataContentType()) {
			e.DataEncoded = []byte(rawData)
			break
		}
		s, ok, err := str("data")
		if err != nil {
			return nil, &DecodeError{Field: "data", Reason: fmt.Sprintf("must be a JSON string for datacontenttype %q (binary data goes in data_base64)", e.DataContentType())}
		}
		if ok {
			e.DataEncoded = []byte(s)
		}
	}
	return &e, nil
}

// extensionValue turns a JSON extension value into its canonical string:
// strings as they are, numbers as written, booleans as true/false; null
// means absent.
func extensionValue(raw json.RawMessage) (string, bool, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false, "empty value"
	}
	switch raw[0] {
	case 'n':
		return "", false, ""
	case 't':
		return "true", true, ""
	case 'f':
		return "false", true, ""
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Sprintf("malformed string: %v", err)
		}
		if r := checkString(s); r != "" {
			return "", false, r
		}
		return s, true, ""
	case '{', '[':
		return "", false, "extension value must be a string, number or boolean"
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, fmt.Sprintf("malformed value: %v", err)
	}
	return strings.TrimSpace(n.String()), true, ""
}
