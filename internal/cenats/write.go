package cenats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Encode renders e in binary content mode: a ce-* header per attribute
// and extension (percent-encoded), content-type for datacontenttype,
// Nats-Msg-Id set to the event id for JetStream de-duplication, and the
// data as body. It refuses events that Decode would refuse (other than
// for size): invalid per the SDK, not CloudEvents 1.0, attribute values
// with control characters or invalid UTF-8, JSON content types with data
// that is not JSON.
func Encode(ctx context.Context, e *event.Event) (nats.Header, []byte, error) {
	if err := precheck(e); err != nil {
		return nil, nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	w := &binaryWriter{header: nats.Header{}}
	if _, err := binding.Write(binding.WithForceBinary(ctx), binding.ToMessage(e), nil, w); err != nil {
		return nil, nil, fmt.Errorf("cenats: encode event %q: %w", e.ID(), err)
	}
	w.header.Set(HeaderMsgID, encodeHeaderValue(e.ID()))
	return w.header, w.body, nil
}

// NewMsg encodes e (binary mode) into a message for the subject.
func NewMsg(subject string, e *event.Event) (*nats.Msg, error) {
	h, body, err := Encode(context.Background(), e)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Header: h, Data: body}, nil
}

// EncodeStructured renders e in structured content mode: the JSON event
// format as body, content-type application/cloudevents+json, and
// Nats-Msg-Id. Extension values are written as their canonical strings.
// Data is written as JSON when the content type is JSON (or absent and
// the data is JSON), as a string when it is UTF-8 text, else as
// data_base64.
func EncodeStructured(ctx context.Context, e *event.Event) (nats.Header, []byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	// Same checks as binary mode, attribute values included.
	if _, _, err := Encode(ctx, e); err != nil {
		return nil, nil, err
	}
	c := e.Clone()
	for name, v := range c.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return nil, nil, fmt.Errorf("cenats: encode event %q: extension %s: %w", e.ID(), name, err)
		}
		c.SetExtension(name, s)
	}
	c.DataBase64 = false
	if len(c.DataEncoded) == 0 {
		c.DataEncoded = nil // the SDK would write an empty JSON value
	}
	if data := c.Data(); len(data) > 0 {
		if sdkJSONType(c.DataContentType()) {
			// Explicit JSON types were checked by Encode; only data without
			// a content type can get here without being JSON.
			c.DataBase64 = !utf8.Valid(data) || !json.Valid(data)
		} else {
			c.DataBase64 = !utf8.Valid(data)
		}
	}
	w := &structuredWriter{}
	wctx := binding.UseFormatForEvent(binding.WithForceStructured(ctx), strictJSON{})
	if _, err := binding.Write(wctx, binding.ToMessage(&c), w, nil); err != nil {
		return nil, nil, fmt.Errorf("cenats: encode event %q: %w", e.ID(), err)
	}
	h := nats.Header{}
	h.Set(HeaderContentType, ContentTypeStructured)
	h.Set(HeaderMsgID, encodeHeaderValue(e.ID()))
	return h, w.body, nil
}

func precheck(e *event.Event) error {
	if e == nil {
		return errors.New("cenats: encode: nil event")
	}
	if p := checkEvent(e); p != nil {
		return fmt.Errorf("cenats: encode event %q: %s: %s", e.ID(), p.attr, p.reason)
	}
	return nil
}

// binaryWriter is the binding.BinaryWriter of binary mode.
type binaryWriter struct {
	header nats.Header
	body   []byte
}

var _ binding.BinaryWriter = (*binaryWriter)(nil)

func (w *binaryWriter) Start(context.Context) error { return nil }
func (w *binaryWriter) End(context.Context) error   { return nil }

func (w *binaryWriter) SetAttribute(a spec.Attribute, value any) error {
	if value == nil {
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Name(), err)
	}
	if _, reason := checkAttr(a.Kind(), s); reason != "" {
		return fmt.Errorf("%s: %s", a.Name(), reason)
	}
	w.header.Set(HeaderPrefix+a.Name(), encodeHeaderValue(s))
	if a.Kind() == spec.DataContentType {
		w.header.Set(HeaderContentType, s)
	}
	return nil
}

func (w *binaryWriter) SetExtension(name string, value any) error {
	if value == nil {
		return nil
	}
	name = strings.ToLower(name)
	if reason := checkExtensionName(name); reason != "" {
		return fmt.Errorf("extension %s: %s", name, reason)
	}
	s, err := types.Format(value)
	if err != nil {
		return fmt.Errorf("extension %s: %w", name, err)
	}
	if reason := checkString(s); reason != "" {
		return fmt.Errorf("extension %s: %s", name, reason)
	}
	w.header.Set(HeaderPrefix+name, encodeHeaderValue(s))
	return nil
}

func (w *binaryWriter) SetData(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	w.body = b
	return nil
}

// structuredWriter is the binding.StructuredWriter of structured mode.
type structuredWriter struct {
	body []byte
}

var _ binding.StructuredWriter = (*structuredWriter)(nil)

func (w *structuredWriter) SetStructuredEvent(_ context.Context, f format.Format, r io.Reader) error {
	if f.MediaType() != ContentTypeStructured {
		return fmt.Errorf("unsupported event format %s", f.MediaType())
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	w.body = buf.Bytes()
	return nil
}
