package cenats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
)

// diffEvents describes how two events differ, "" when they are equal.
// JSON data is compared ignoring insignificant whitespace around it (the
// structured format cannot carry it); extension values as strings.
func diffEvents(a, b *event.Event) string {
	var d []string
	cmp := func(name string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s: %#v != %#v", name, x, y))
		}
	}
	cmp("specversion", a.SpecVersion(), b.SpecVersion())
	cmp("id", a.ID(), b.ID())
	cmp("source", a.Source(), b.Source())
	cmp("type", a.Type(), b.Type())
	cmp("subject", a.Subject(), b.Subject())
	cmp("datacontenttype", a.DataContentType(), b.DataContentType())
	cmp("dataschema", a.DataSchema(), b.DataSchema())
	if !a.Time().Equal(b.Time()) {
		d = append(d, fmt.Sprintf("time: %v != %v", a.Time(), b.Time()))
	}
	ea, eb := a.Extensions(), b.Extensions()
	names := map[string]bool{}
	for k := range ea {
		names[k] = true
	}
	for k := range eb {
		names[k] = true
	}
	for k := range names {
		cmp("extension "+k, fmt.Sprint(ea[k]), fmt.Sprint(eb[k]))
		if _, ok := ea[k]; !ok {
			d = append(d, "extension "+k+" missing in first")
		}
		if _, ok := eb[k]; !ok {
			d = append(d, "extension "+k+" missing in second")
		}
	}
	if !bytes.Equal(a.Data(), b.Data()) {
		ja, jb := compactJSON(a.Data()), compactJSON(b.Data())
		if ja == nil || jb == nil || !bytes.Equal(ja, jb) {
			d = append(d, fmt.Sprintf("data: %q != %q", a.Data(), b.Data()))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil
	}
	return buf.Bytes()
}

func mustEvent(t testing.TB, opts ...func(*event.Event)) *event.Event {
	t.Helper()
	e := event.New(event.CloudEventsVersionV1)
	e.SetID("0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10")
	e.SetSource("/storefront/eu-1")
	e.SetType(events.PlaceOrderV1)
	e.SetTime(time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC))
	e.SetSubject("order-42")
	e.SetDataSchema(events.MustLookup(events.PlaceOrderV1).SchemaURI())
	e.SetExtension(events.ExtTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e.SetExtension(events.ExtCorrelationID, "corr-1")
	e.SetExtension(events.ExtCausationID, "cause-1")
	e.SetExtension(events.ExtPartitionKey, "order-42")
	if err := e.SetData(event.ApplicationJSON, []byte(`{"customer_id":"c-1","lines":[{"sku":"A","quantity":2,"unit_price":150}],"currency":"EUR"}`)); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(&e)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return &e
}

func TestBinaryAndStructuredDecodeToSameEvent(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		opts []func(*event.Event)
	}{
		{"json data", nil},
		{"no data", []func(*event.Event){func(e *event.Event) { e.DataEncoded = nil }}},
		{"text data", []func(*event.Event){func(e *event.Event) {
			_ = e.SetData("text/plain; charset=utf-8", []byte("hello \"world\"\n\x01 ü"))
		}}},
		{"binary data", []func(*event.Event){func(e *event.Event) {
			_ = e.SetData("application/octet-stream", []byte{0, 0xff, 0xfe, 'a', 0x80})
		}}},
		{"no content type, JSON data", []func(*event.Event){func(e *event.Event) {
			e.SetDataContentType("")
			e.DataEncoded = []byte(`[1,2,3]`)
		}}},
		{"no content type, opaque data", []func(*event.Event){func(e *event.Event) {
			e.SetDataContentType("")
			e.DataEncoded = []byte{0xde, 0xad, 0xbe, 0xef}
		}}},
		{"vendor json type", []func(*event.Event){func(e *event.Event) {
			_ = e.SetData("application/vnd.tradewind+json", []byte(`{"a":"ü"}`))
		}}},
		{"minimal", []func(*event.Event){func(e *event.Event) {
			e.SetSubject("")
			e.SetDataSchema("")
			e.SetTime(time.Time{})
			e.Context.(*event.EventContextV1).Extensions = nil
			e.DataEncoded = nil
			e.SetDataContentType("")
		}}},
		{"typed extensions", []func(*event.Event){func(e *event.Event) {
			e.SetExtension("attempt", int32(3))
			e.SetExtension("replay", true)
			e.SetExtension("seen", time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
		}}},
		{"non-ASCII attributes", []func(*event.Event){func(e *event.Event) {
			e.SetSubject("Bestellung Nr. 42 – Grüße")
			e.SetExtension(events.ExtCorrelationID, "Euro € 😀 100% \"q\"")
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := mustEvent(t, tc.opts...)

			bh, bb, err := Encode(ctx, want)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := bh.Get(HeaderMsgID); got != want.ID() {
				t.Errorf("Nats-Msg-Id = %q, want %q", got, want.ID())
			}
			fromBinary, err := Decode(bh, bb)
			if err != nil {
				t.Fatalf("Decode(binary): %v\nheaders: %v", err, bh)
			}

			sh, sb, err := EncodeStructured(ctx, want)
			if err != nil {
				t.Fatalf("EncodeStructured: %v", err)
			}
			if got := sh.Get(HeaderContentType); got != "application/cloudevents+json" {
				t.Errorf("structured content-type = %q", got)
			}
			fromStructured, err := Decode(sh, sb)
			if err != nil {
				t.Fatalf("Decode(structured): %v\nbody: %s", err, sb)
			}

			if d := diffEvents(fromBinary, fromStructured); d != "" {
				t.Errorf("binary and structured decode differ: %s\nstructured body: %s", d, sb)
			}
			if d := diffEvents(want, fromBinary); d != "" {
				t.Errorf("decoded event differs from the original: %s", d)
			}
			for k, v := range fromBinary.Extensions() {
				if _, ok := v.(string); !ok {
					t.Errorf("extension %s decoded as %T, want string", k, v)
				}
			}
			if err := fromBinary.Validate(); err != nil {
				t.Errorf("decoded event invalid: %v", err)
			}
		})
	}
}

func TestEncodeBinaryHeaders(t *testing.T) {
	e := mustEvent(t, func(e *event.Event) {
		e.SetExtension(events.ExtCorrelationID, "Euro € 😀")
		e.SetExtension(events.ExtCausationID, `say "hi" at 100%`)
		e.SetSubject("order 42")
	})
	h, body, err := Encode(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ce-specversion":     "1.0",
		"ce-id":              e.ID(),
		"ce-source":          "/storefront/eu-1",
		"ce-type":            events.PlaceOrderV1,
		"ce-time":            "2026-03-04T05:06:07.890123456Z",
		"ce-subject":         "order%2042",
		"ce-dataschema":      "https://schemas.tradewind.dev/orders.place.v1.json",
		"ce-datacontenttype": "application/json",
		"content-type":       "application/json",
		"ce-correlationid":   "Euro%20%E2%82%AC%20%F0%9F%98%80", // the binding's own example
		"ce-causationid":     "say%20%22hi%22%20at%20100%25",
		"ce-traceparent":     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"ce-partitionkey":    "order-42",
		"Nats-Msg-Id":        e.ID(),
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers = %v, want exactly %d", h, len(want))
	}
	if !bytes.Equal(body, e.Data()) {
		t.Errorf("body = %q, want %q", body, e.Data())
	}
	for k, vs := range h {
		for _, v := range vs {
			if r := checkHeaderChars(v); r != "" || strings.ContainsAny(v, " \"") && k != "content-type" {
				t.Errorf("header %s value %q is not wire-safe", k, v)
			}
		}
	}
	got, err := Decode(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffEvents(e, got); d != "" {
		t.Error(d)
	}
	if v := got.Extensions()[events.ExtCorrelationID]; v != "Euro € 😀" {
		t.Errorf("correlationid = %q", v)
	}
}

// validBinary is a minimal valid binary-mode header set.
func validBinary() nats.Header {
	return nats.Header{
		"ce-specversion": {"1.0"},
		"ce-id":          {"id-1"},
		"ce-source":      {"/storefront"},
		"ce-type":        {events.PlaceOrderV1},
		"content-type":   {"application/json"},
	}
}

func with(h nats.Header, kv ...string) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<del>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = []string{kv[i+1]}
	}
	return out
}

func TestDecodeBinaryLenient(t *testing.T) {
	cases := []struct {
		name   string
		h      nats.Header
		ext    string
		want   string
		source string
	}{
		{"lower-case hex", with(validBinary(), "ce-x", "%e2%82%ac"), "x", "€", ""},
		{"needless escapes", with(validBinary(), "ce-x", "%41%42c"), "x", "ABc", ""},
		{"quoted string", with(validBinary(), "ce-x", `"a b \"c\" %25"`), "x", `a b "c" %`, ""},
		{"header names any case", with(validBinary(), "ce-id", "<del>", "CE-ID", "id-2", "Ce-X", "v"), "x", "v", ""},
		{"surrounding whitespace", with(validBinary(), "ce-x", "  v%20 \t"), "x", "v ", ""},
		{"empty extension", with(validBinary(), "ce-x", ""), "x", "", ""},
		{"content-type any case", with(validBinary(), "content-type", "<del>", "Content-Type", "text/plain", "ce-x", "1"), "x", "1", ""},
		{"only ce-datacontenttype", with(validBinary(), "content-type", "<del>", "ce-datacontenttype", "text/plain", "ce-x", "1"), "x", "1", ""},
		{"encoded source", with(validBinary(), "ce-source", "/a%20b", "ce-x", "1"), "x", "1", "/a%20b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode(tc.h, []byte(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Extensions()[tc.ext]; got != tc.want {
				t.Errorf("extension %s = %q, want %q", tc.ext, got, tc.want)
			}
			if tc.source != "" && e.Source() != tc.source {
				t.Errorf("source = %q, want %q", e.Source(), tc.source)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	structured := nats.Header{"content-type": {"application/cloudevents+json"}}
	okJSON := []byte(`{"a":1}`)
	obj := func(members string) []byte {
		return []byte(`{"specversion":"1.0","id":"id-1","source":"/s","type":"t"` + members + `}`)
	}
	cases := []struct {
		name   string
		h      nats.Header
		body   []byte
		limit  int
		field  string
		reason string // substring
	}{
		// binary mode
		{"missing specversion", with(validBinary(), "ce-specversion", "<del>"), okJSON, 0, "ce-specversion", "missing"},
		{"unsupported specversion", with(validBinary(), "ce-specversion", "0.3"), okJSON, 0, "ce-specversion", `unsupported spec version "0.3"`},
		{"missing id", with(validBinary(), "ce-id", "<del>"), okJSON, 0, "ce-id", "missing"},
		{"missing source", with(validBinary(), "ce-source", "<del>"), okJSON, 0, "ce-source", "missing"},
		{"missing type", with(validBinary(), "ce-type", "<del>"), okJSON, 0, "ce-type", "missing"},
		{"blank id", with(validBinary(), "ce-id", "%20%20"), okJSON, 0, "ce-id", "non-empty"},
		{"no headers at all", nil, okJSON, 0, "ce-specversion", "missing"},
		{"specversion reported first", with(validBinary(), "ce-specversion", "2.0", "ce-id", "<del>", "ce-time", "x"), okJSON, 0, "ce-specversion", "unsupported"},
		{"bad percent escape", with(validBinary(), "ce-subject", "a%G1"), okJSON, 0, "ce-subject", "malformed percent-encoding"},
		{"truncated percent escape", with(validBinary(), "ce-correlationid", "abc%4"), okJSON, 0, "ce-correlationid", "truncated"},
		{"overlong UTF-8", with(validBinary(), "ce-correlationid", "%C0%A0"), okJSON, 0, "ce-correlationid", "not valid UTF-8"},
		{"encoded surrogate", with(validBinary(), "ce-correlationid", "%ED%A0%80"), okJSON, 0, "ce-correlationid", "not valid UTF-8"},
		{"raw non-ASCII", with(validBinary(), "ce-traceparent", "grüße"), okJSON, 0, "ce-traceparent", "not printable US-ASCII"},
		{"raw control char", with(validBinary(), "ce-id", "a\x01b"), okJSON, 0, "ce-id", "not printable US-ASCII"},
		{"encoded control char", with(validBinary(), "ce-partitionkey", "a%00b"), okJSON, 0, "ce-partitionkey", "control character U+0000"},
		{"encoded newline in id", with(validBinary(), "ce-id", "a%0D%0Ab"), okJSON, 0, "ce-id", "control character"},
		{"bad quoted string", with(validBinary(), "ce-subject", `"abc`), okJSON, 0, "ce-subject", "quoted string"},
		{"bad time", with(validBinary(), "ce-time", "yesterday"), okJSON, 0, "ce-time", "RFC 3339"},
		{"time out of range", with(validBinary(), "ce-time", "9999-12-31T23:00:00-05:00"), okJSON, 0, "ce-time", "out of range"},
		{"relative dataschema", with(validBinary(), "ce-dataschema", "/schemas/x.json"), okJSON, 0, "ce-dataschema", "absolute"},
		{"bad source", with(validBinary(), "ce-source", "http://%25zz"), okJSON, 0, "ce-source", "URI-reference"},
		{"bad content-type", with(validBinary(), "content-type", "application/json; ="), okJSON, 0, "content-type", "media type"},
		{"non-ASCII content-type", with(validBinary(), "content-type", "application/jsön"), okJSON, 0, "content-type", "US-ASCII"},
		{"conflicting content types", with(validBinary(), "ce-datacontenttype", "text/plain"), okJSON, 0, "content-type", "conflicts"},
		{"bad ce-datacontenttype", with(validBinary(), "content-type", "<del>", "ce-datacontenttype", "%C3%A4"), okJSON, 0, "ce-datacontenttype", "US-ASCII"},
		{"duplicate header values", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"a", "b"}, "ce-source": {"/s"}, "ce-type": {"t"}}, nil, 0, "ce-id", "more than once"},
		{"duplicate header names", with(validBinary(), "CE-ID", "other"), okJSON, 0, "ce-id", "more than once"},
		{"bad extension name", with(validBinary(), "ce-foo_bar", "x"), okJSON, 0, "ce-foo_bar", "invalid attribute name"},
		{"empty extension name", with(validBinary(), "ce-", "x"), okJSON, 0, "ce-", "empty attribute name"},
		{"reserved extension name", with(validBinary(), "ce-data", "x"), okJSON, 0, "ce-data", "reserved"},
		{"invalid UTF-8 in JSON data", validBinary(), []byte("{\"a\":\"\xff\"}"), 0, "data", "invalid UTF-8"},
		{"malformed JSON data", validBinary(), []byte(`{"a":`), 0, "data", "malformed JSON data"},
		{"malformed vendor JSON data", with(validBinary(), "content-type", "application/vnd.x+json"), []byte(`nope`), 0, "data", "malformed JSON data"},
		{"oversize", validBinary(), bytes.Repeat([]byte("1"), 2049), 2048, "data", "2049 bytes exceeds the limit of 2048 bytes"},
		{"oversize default", with(validBinary(), "content-type", "application/octet-stream"), make([]byte, DefaultMaxPayload+1), 0, "data", fmt.Sprintf("exceeds the limit of %d bytes", DefaultMaxPayload)},

		// structured mode
		{"unsupported format", nats.Header{"Content-Type": {"application/cloudevents-batch+json"}}, []byte(`[]`), 0, "content-type", "unsupported event format"},
		{"malformed JSON event", structured, []byte(`{"specversion":`), 0, "event", "malformed JSON event"},
		{"empty body", structured, nil, 0, "event", "malformed JSON event"},
		{"not an object", structured, []byte(`["1.0"]`), 0, "event", "not a JSON object"},
		{"trailing data", structured, append(obj(""), "{}"...), 0, "event", "after the end"},
		{"structured missing specversion", structured, []byte(`{"id":"1","source":"/s","type":"t"}`), 0, "specversion", "missing"},
		{"structured specversion number", structured, []byte(`{"specversion":1.0,"id":"1","source":"/s","type":"t"}`), 0, "specversion", "JSON string"},
		{"structured unsupported specversion", structured, []byte(`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`), 0, "specversion", "unsupported"},
		{"structured missing id", structured, []byte(`{"specversion":"1.0","source":"/s","type":"t"}`), 0, "id", "missing"},
		{"structured null type", structured, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":null}`), 0, "type", "missing"},
		{"structured id not a string", structured, []byte(`{"specversion":"1.0","id":7,"source":"/s","type":"t"}`), 0, "id", "JSON string"},
		{"structured empty subject", structured, obj(`,"subject":""`), 0, "subject", "non-empty"},
		{"structured bad time", structured, obj(`,"time":"2026-13-01T00:00:00Z"`), 0, "time", "RFC 3339"},
		{"structured control char", structured, obj(`,"correlationid":"a\u0007b"`), 0, "correlationid", "control character U+0007"},
		{"structured invalid UTF-8 in data", structured, obj(",\"datacontenttype\":\"application/json\",\"data\":\"\xc3\x28\""), 0, "data", "invalid UTF-8"},
		{"structured invalid UTF-8 in attribute", structured, obj(",\"subject\":\"\xff\""), 0, "subject", "invalid UTF-8"},
		{"structured duplicate member", structured, obj(`,"id":"again"`), 0, "id", "more than once"},
		{"structured data and data_base64", structured, obj(`,"data":"a","data_base64":"YQ=="`), 0, "data_base64", "together"},
		{"structured bad base64", structured, obj(`,"data_base64":"!!"`), 0, "data_base64", "base64"},
		{"structured data_base64 number", structured, obj(`,"data_base64":1`), 0, "data_base64", "JSON string"},
		{"structured text data not string", structured, obj(`,"datacontenttype":"text/plain","data":{"a":1}`), 0, "data", "JSON string"},
		{"structured extension object", structured, obj(`,"correlationid":{"a":1}`), 0, "correlationid", "string, number or boolean"},
		{"structured bad extension name", structured, obj(`,"Correlation_ID":"x"`), 0, "Correlation_ID", "invalid attribute name"},
		{"structured oversize data", structured, obj(`,"data_base64":"` + strings.Repeat("A", 4000) + `"`), 2048, "data", "3000 bytes exceeds the limit of 2048 bytes"},
		{"structured oversize document", structured, obj(`,"x":"` + strings.Repeat("A", 6*1024+64<<10) + `"`), 1024, "data", "structured event of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *event.Event
			var err error
			if tc.limit > 0 {
				e, err = DecodeLimit(tc.h, tc.body, tc.limit)
			} else {
				e, err = Decode(tc.h, tc.body)
			}
			if err == nil {
				t.Fatalf("Decode succeeded: %v", e)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if de.Field != tc.field {
				t.Errorf("Field = %q, want %q (error: %v)", de.Field, tc.field, err)
			}
			if !strings.Contains(de.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to mention %q", de.Reason, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "cloudevent "+de.Field+": ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestEncodeRejectsInvalidEvents(t *testing.T) {
	cases := []struct {
		name   string
		e      *event.Event
		reason string
	}{
		{"nil", nil, "nil event"},
		{"no id", mustEventNoValidate(func(e *event.Event) { e.Context.(*event.EventContextV1).ID = "" }), "id"},
		{"invalid JSON data", mustEventNoValidate(func(e *event.Event) { e.DataEncoded = []byte("{") }), "malformed JSON data"},
		{"control char in extension", mustEventNoValidate(func(e *event.Event) { e.SetExtension("x", "a\nb") }), "control character"},
		{"invalid UTF-8 subject", mustEventNoValidate(func(e *event.Event) { e.SetSubject("a\xffb") }), "invalid UTF-8"},
		{"spec version 0.3", mustEventNoValidate(func(e *event.Event) { e.SetSpecVersion(event.CloudEventsVersionV03) }), "unsupported spec version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Encode(context.Background(), tc.e); err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Encode error = %v, want one mentioning %q", err, tc.reason)
			}
			if _, _, err := EncodeStructured(context.Background(), tc.e); err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("EncodeStructured error = %v, want one mentioning %q", err, tc.reason)
			}
		})
	}
}

func mustEventNoValidate(opt func(*event.Event)) *event.Event {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID("id-1")
	e.SetSource("/s")
	e.SetType("t")
	_ = e.SetData(event.ApplicationJSON, []byte(`{}`))
	opt(&e)
	return &e
}

func TestMessageIsABindingMessage(t *testing.T) {
	ctx := context.Background()
	want := mustEvent(t)
	h, body, err := Encode(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMessage(h, body)
	if m.ReadEncoding() != binding.EncodingBinary {
		t.Fatalf("encoding = %v", m.ReadEncoding())
	}
	// Read twice: a Message can be read again.
	for i := 0; i < 2; i++ {
		got, err := binding.ToEvent(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffEvents(want, got); d != "" {
			t.Error(d)
		}
	}
	// Copy it through binding.Write into a structured writer.
	sw := &structuredWriter{}
	if _, err := binding.Write(binding.WithForceStructured(ctx), m, sw, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(nats.Header{"content-type": {ContentTypeStructured}}, sw.body)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffEvents(want, got); d != "" {
		t.Error(d)
	}
	if err := m.Finish(nil); err != nil {
		t.Error(err)
	}

	sh, sb, err := EncodeStructured(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if enc := NewMessage(sh, sb).ReadEncoding(); enc != binding.EncodingStructured {
		t.Errorf("structured message read as %v", enc)
	}
	// Parameters and case do not hide structured mode.
	if enc := NewMessage(nats.Header{"Content-Type": {"Application/CloudEvents+JSON; charset=utf-8"}}, sb).ReadEncoding(); enc != binding.EncodingStructured {
		t.Errorf("structured message with parameters read as %v", enc)
	}
	if _, err := Decode(nats.Header{"Content-Type": {"Application/CloudEvents+JSON; charset=utf-8"}}, sb); err != nil {
		t.Error(err)
	}
}

func TestNewMsg(t *testing.T) {
	e := mustEvent(t)
	msg, err := NewMsg("cmd.orders.place", e)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "cmd.orders.place" || msg.Header.Get("ce-id") != e.ID() || !bytes.Equal(msg.Data, e.Data()) {
		t.Errorf("NewMsg = %+v", msg)
	}
	if _, err := NewMsg("x", nil); err == nil {
		t.Error("NewMsg(nil) succeeded")
	}
}
