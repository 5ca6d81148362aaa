package cenats

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// headerText renders headers as "Name: value" lines, the fuzzer's input.
func headerText(h nats.Header) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// parseHeaderText is the inverse of headerText; a line without a colon
// is a header with an empty value, and repeated names add values.
func parseHeaderText(s string) nats.Header {
	h := nats.Header{}
	if s == "" {
		return h
	}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, ":")
		h.Add(k, strings.TrimPrefix(v, " "))
	}
	return h
}

// FuzzDecode feeds arbitrary headers and bodies to Decode. Decode must not
// panic, must fail only with *DecodeError, and every event it returns
// must be valid and survive a round trip through both content modes.
func FuzzDecode(f *testing.F) {
	ctx := context.Background()
	seed := mustEvent(f, func(e *event.Event) {
		e.SetExtension("correlationid", "Grüße 100% \"q\"")
	})
	bh, bb, err := Encode(ctx, seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(headerText(bh), bb)
	sh, sb, err := EncodeStructured(ctx, seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(headerText(sh), sb)
	text := mustEvent(f, func(e *event.Event) { _ = e.SetData("text/plain", []byte("a\x01\"b\"ü")) })
	th, tb, _ := EncodeStructured(ctx, text)
	f.Add(headerText(th), tb)
	bin := mustEvent(f, func(e *event.Event) { _ = e.SetData("application/octet-stream", []byte{0xff, 0}) })
	th, tb, _ = EncodeStructured(ctx, bin)
	f.Add(headerText(th), tb)
	th, tb, _ = Encode(ctx, bin)
	f.Add(headerText(th), tb)

	valid := headerText(validBinary())
	f.Add(valid, []byte(`{"a":1}`))
	f.Add(valid+"\nce-time: 2026-01-01T00:00:00+01:00\nce-subject: \"a \\\"b\\\"\"", []byte(`[]`))
	f.Add(valid+"\nce-x: %C0%A0", []byte(`{}`))
	f.Add(valid+"\nce-x: %4", []byte(`{}`))
	f.Add(valid+"\nce-x: %zz", []byte(`{}`))
	f.Add(valid+"\nce-time: 9999-12-31T23:00:00-05:00", []byte(`{}`))
	f.Add(valid+"\nce-source: http://%25zz", []byte(`{}`))
	f.Add(valid+"\nce-datacontenttype: text/plain", []byte(`{}`))
	f.Add(valid, []byte("{\"a\":\"\xff\"}"))
	f.Add(strings.Replace(valid, "ce-id", "x-id", 1), []byte(`{}`))
	f.Add(strings.Replace(valid, "1.0", "0.3", 1), []byte(`{}`))
	st := "content-type: application/cloudevents+json"
	f.Add(st, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":1}`))
	f.Add(st, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":null,"x":1.5e3,"y":true,"z":null}`))
	f.Add(st, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x","time":"2026-01-01T00:00:00Z"}`))
	f.Add(st, []byte(`{"specversion":"1.0","id":"1","id":"2"}`))
	f.Add(st, []byte(`{"specversion":"1.0"`))
	f.Add(st, []byte(`[]`))
	f.Add(st+"\nce-id: x", []byte("{\"specversion\":\"1.0\",\"id\":\"\xc3\x28\"}"))
	f.Add(st, []byte(`{"specversion":"1.0","id":"0","source":"0","type":"0","data_base64":""}`))
	f.Add(st, []byte(`{"specversion":"1.0","id":"0","source":"0","type":"0","data":"!&<>"}`))
	f.Add("Ce-id:0\nCe-sourCe:0\nCe-speCversion:1.0\nCe-tYpe:0", []byte("{\"\":\"\xff\"}"))
	f.Add("Content-Type: application/cloudevents-batch+json", []byte(`[]`))
	f.Add("", []byte{})

	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		h := parseHeaderText(headers)
		e, err := Decode(h, body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if strings.Contains(de.Reason, "internal error") {
				t.Fatalf("Decode panicked: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded event is invalid: %v", err)
		}

		h2, b2, err := Encode(ctx, e)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
		e2, err := Decode(h2, b2)
		if err != nil {
			t.Fatalf("binary re-encoding does not decode: %v\nheaders: %v", err, h2)
		}
		if d := diffEvents(e, e2); d != "" {
			t.Fatalf("binary round trip changed the event: %s", d)
		}

		h3, b3, err := EncodeStructured(ctx, e)
		if err != nil {
			t.Fatalf("decoded event does not re-encode structured: %v", err)
		}
		e3, err := Decode(h3, b3)
		if err != nil {
			t.Fatalf("structured re-encoding does not decode: %v\nbody: %s", err, b3)
		}
		if d := diffEvents(e, e3); d != "" {
			t.Fatalf("structured round trip changed the event: %s\nbody: %s", d, b3)
		}
	})
}
