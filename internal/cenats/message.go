package cenats

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

const (
	// HeaderPrefix starts the header of every attribute in binary mode.
	HeaderPrefix = "ce-"
	// HeaderContentType is the header that carries datacontenttype in
	// binary mode and the event format in structured mode.
	HeaderContentType = "content-type"
	// HeaderMsgID is JetStream's de-duplication header; Encode sets it to
	// the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// ContentTypeStructured is the content-type of structured messages.
	ContentTypeStructured = event.ApplicationCloudEventsJSON
)

var (
	specs  = spec.WithPrefix(HeaderPrefix)
	specV1 = specs.Version(event.CloudEventsVersionV1)
)

// Message is a NATS message (headers and body) read as a binding.Message.
// It can be read any number of times. Problems in the headers are found
// when it is built and returned, as *DecodeError, by ReadBinary.
type Message struct {
	header nats.Header
	body   []byte
	enc    binding.Encoding

	// structured mode
	format string // media type of the content-type header

	// binary mode
	attrs   map[spec.Kind]any // decoded attribute values, typed as the SDK wants them
	exts    map[string]string // decoded extension values
	dctFrom string            // header datacontenttype came from
	err     *DecodeError      // first problem in the headers
}

var (
	_ binding.Message               = (*Message)(nil)
	_ binding.MessageMetadataReader = (*Message)(nil)
)

// NewMessage wraps headers and body as a binding.Message. The message
// is in structured mode when its content-type is application/cloudevents
// (with any suffix or parameters), else in binary mode.
func NewMessage(h nats.Header, data []byte) binding.Message {
	return newMessage(h, data)
}

func newMessage(h nats.Header, data []byte) *Message {
	m := &Message{header: h, body: data, enc: binding.EncodingBinary}
	ctValues := headerValues(h, HeaderContentType)
	if len(ctValues) == 1 {
		mt := mediaType(ctValues[0])
		if strings.HasPrefix(mt, "application/cloudevents") {
			m.enc = binding.EncodingStructured
			m.format = mt
			return m
		}
	}
	m.parseBinary()
	return m
}

// ReadEncoding tells binary or structured mode.
func (m *Message) ReadEncoding() binding.Encoding { return m.enc }

// ReadStructured hands a structured message to w, in the strict JSON
// event format of this package.
func (m *Message) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.enc != binding.EncodingStructured {
		return binding.ErrNotStructured
	}
	if m.format != ContentTypeStructured {
		return &DecodeError{Field: HeaderContentType, Reason: fmt.Sprintf("unsupported event format %q (supported: %s)", m.format, ContentTypeStructured)}
	}
	return w.SetStructuredEvent(ctx, strictJSON{}, bytes.NewReader(m.body))
}

// ReadBinary hands the attributes, extensions and data of a binary
// message to w. Errors of w are returned as *DecodeError naming the header.
func (m *Message) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	if m.enc != binding.EncodingBinary {
		return binding.ErrNotBinary
	}
	if m.err != nil {
		return m.err
	}
	for _, a := range specV1.Attributes() {
		v, ok := m.attrs[a.Kind()]
		if !ok {
			continue
		}
		if err := w.SetAttribute(a, v); err != nil {
			return &DecodeError{Field: m.attrField(a.Kind()), Reason: err.Error()}
		}
	}
	names := make([]string, 0, len(m.exts))
	for name := range m.exts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.SetExtension(name, m.exts[name]); err != nil {
			return &DecodeError{Field: HeaderPrefix + name, Reason: err.Error()}
		}
	}
	if len(m.body) > 0 {
		// A reader that is not a *bytes.Buffer makes the SDK copy the
		// body, so the event does not alias the caller's buffer.
		if err := w.SetData(bytes.NewReader(m.body)); err != nil {
			return &DecodeError{Field: "data", Reason: err.Error()}
		}
	}
	return nil
}

// GetAttribute returns a decoded attribute of a binary message.
func (m *Message) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	a := specV1.AttributeFromKind(k)
	if a == nil {
		return nil, nil
	}
	if v, ok := m.attrs[k]; ok {
		return a, v
	}
	return a, nil
}

// GetExtension returns a decoded extension of a binary message.
func (m *Message) GetExtension(name string) any {
	if v, ok := m.exts[strings.ToLower(name)]; ok {
		return v
	}
	return nil
}

// Finish does nothing: acknowledgement is the subscriber's business.
func (m *Message) Finish(error) error { return nil }

// attrField names the header an attribute was read from.
func (m *Message) attrField(k spec.Kind) string {
	if k == spec.DataContentType && m.dctFrom != "" {
		return m.dctFrom
	}
	return HeaderPrefix + k.String()
}

// parseBinary reads every ce-* header and content-type, decoding and
// checking values. The most important problem is kept in m.err:
// specversion first, then the other required attributes, then the rest
// in header-name order.
func (m *Message) parseBinary() {
	m.attrs = map[spec.Kind]any{}
	m.exts = map[string]string{}
	var problems []*DecodeError
	fail := func(field, reason string) {
		problems = append(problems, &DecodeError{Field: field, Reason: reason})
	}

	keys := make([]string, 0, len(m.header))
	for k := range m.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	var contentType, dctHeader string
	var hasContentType, hasDCTHeader bool
	for _, k := range keys {
		vals := m.header[k]
		if len(vals) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		isCT := lk == HeaderContentType
		if !isCT && !strings.HasPrefix(lk, HeaderPrefix) {
			continue // not ours (Nats-Msg-Id, tracing headers, ...)
		}
		if seen[lk] || len(vals) > 1 {
			fail(lk, "header appears more than once")
			continue
		}
		seen[lk] = true
		raw := vals[0]
		if isCT {
			// content-type is an ordinary header: not percent-encoded.
			if r := checkHeaderChars(raw); r != "" {
				fail(lk, r)
				continue
			}
			contentType, hasContentType = strings.TrimSpace(raw), true
			continue
		}
		value, reason := decodeHeaderValue(raw)
		if reason != "" {
			fail(lk, reason)
			continue
		}
		name := lk[len(HeaderPrefix):]
		if a := specV1.Attribute(lk); a != nil {
			if a.Kind() == spec.DataContentType {
				dctHeader, hasDCTHeader = value, true
				continue
			}
			v, reason := checkAttr(a.Kind(), value)
			if reason != "" {
				fail(lk, reason)
				continue
			}
			m.attrs[a.Kind()] = v
			continue
		}
		if reason := checkExtensionName(name); reason != "" {
			fail(lk, reason)
			continue
		}
		if reason := checkString(value); reason != "" {
			fail(lk, reason)
			continue
		}
		m.exts[name] = value
	}

	switch {
	case hasContentType && hasDCTHeader && contentType != strings.TrimSpace(dctHeader):
		fail(HeaderContentType, fmt.Sprintf("%q conflicts with ce-datacontenttype %q", contentType, dctHeader))
	case hasContentType:
		m.setDCT(HeaderContentType, contentType, fail)
	case hasDCTHeader:
		m.setDCT(HeaderPrefix+"datacontenttype", dctHeader, fail)
	}

	for _, k := range []spec.Kind{spec.SpecVersion, spec.ID, spec.Source, spec.Type} {
		h := HeaderPrefix + k.String()
		if _, ok := m.attrs[k]; !ok && !seen[h] {
			fail(h, "missing required header")
		}
	}

	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool {
			return fieldRank(problems[i].Field) < fieldRank(problems[j].Field)
		})
		m.err = problems[0]
	}
}

func (m *Message) setDCT(field, value string, fail func(field, reason string)) {
	v, reason := checkAttr(spec.DataContentType, value)
	if reason != "" {
		fail(field, reason)
		return
	}
	m.attrs[spec.DataContentType] = v
	m.dctFrom = field
}

// fieldRank orders problems: specversion, then id, source, type, then the
// rest (in the order found, which is header-name order).
func fieldRank(field string) int {
	switch strings.TrimPrefix(field, HeaderPrefix) {
	case "specversion":
		return 0
	case "id":
		return 1
	case "source":
		return 2
	case "type":
		return 3
	}
	return 4
}

// headerValues returns the values of a header, matching its name
// case-insensitively (nats.Header keeps the case it was sent with).
func headerValues(h nats.Header, name string) []string {
	var out []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}

// mediaType is the lower-case media type of a content type, without
// parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isJSONType tells whether data of this content type must be JSON text:
// application/json, text/json and any +json suffix.
func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// sdkJSONType is the SDK's own notion (event.isJSON): when it is true the
// JSON event format carries the data as a JSON value, otherwise as a
// string (or base64).
func sdkJSONType(ct string) bool {
	switch mediaType(ct) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

// checkAttr checks the canonical string of a context attribute and returns the value to hand to the SDK, or the
// reason it is refused. The same rules apply to decoding, in both modes,
// and to encoding.
func checkAttr(k spec.Kind, s string) (any, string) {
	if r := checkString(s); r != "" {
		return nil, r
	}
	switch k {
	case spec.SpecVersion:
		if s != event.CloudEventsVersionV1 {
			return nil, fmt.Sprintf("unsupported spec version %q (supported: %s)", s, event.CloudEventsVersionV1)
		}
		return s, ""
	case spec.ID, spec.Type:
		if strings.TrimSpace(s) == "" {
			return nil, "must be a non-empty string"
		}
		return s, ""
	case spec.Subject:
		if strings.TrimSpace(s) == "" {
			return nil, "must be a non-empty string when present"
		}
		return s, ""
	case spec.Source:
		if strings.TrimSpace(s) == "" {
			return nil, "must be a non-empty URI-reference"
		}
		if types.ParseURIRef(s) == nil {
			return nil, fmt.Sprintf("%q is not a valid URI-reference", s)
		}
		return s, ""
	case spec.DataSchema:
		u := types.ParseURI(strings.TrimSpace(s))
		if u == nil {
			return nil, fmt.Sprintf("%q is not a valid URI", s)
		}
		if !u.Validate() {
			return nil, fmt.Sprintf("%q is not an absolute URI", s)
		}
		return s, ""
	case spec.DataContentType:
		if r := checkHeaderChars(s); r != "" {
			return nil, r
		}
		if strings.TrimSpace(s) == "" {
			return nil, "must be a non-empty media type when present"
		}
		if _, _, err := mime.ParseMediaType(s); err != nil {
			return nil, fmt.Sprintf("%q is not a valid media type: %v", s, err)
		}
		return s, ""
	case spec.Time:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Sprintf("%q is not an RFC 3339 timestamp", s)
		}
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return nil, fmt.Sprintf("%q is out of range (years 0000-9999 in UTC)", s)
		}
		return t, ""
	}
	return s, ""
}

// checkString refuses values that are not UTF-8 or that hold control
// characters (U+0000-U+001F, U+007F-U+009F), which CloudEvents attribute
// values must not contain.
func checkString(s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Sprintf("contains control character U+%04X", r)
		}
	}
	return ""
}

// checkHeaderChars refuses a raw header value with bytes outside
// printable US-ASCII (space and tab allowed).
func checkHeaderChars(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return fmt.Sprintf("byte 0x%02X at offset %d is not printable US-ASCII (values must be percent-encoded)", c, i)
		}
	}
	return ""
}

// checkExtensionName applies the CloudEvents naming rule (lower-case
// letters and digits; header names arrive lower-cased) and refuses names
// the JSON event format reserves.
func checkExtensionName(name string) string {
	if name == "" {
		return "empty attribute name"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Sprintf("invalid attribute name %q: only lower-case letters a-z and digits 0-9 are allowed", name)
		}
	}
	if name == "data" {
		return `attribute name "data" is reserved`
	}
	return ""
}

// encodeHeaderValue percent-encodes an attribute value as the CloudEvents
// HTTP binding says: space, double quote, percent and every byte outside
// printable ASCII become %XX (upper-case). Encoding the UTF-8 bytes one by
// one is the same as encoding each character's UTF-8 sequence.
func encodeHeaderValue(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte) bool {
	return c <= 0x20 || c >= 0x7f || c == '"' || c == '%'
}

// decodeHeaderValue undoes encodeHeaderValue: the raw value must be
// printable ASCII; a double-quoted value is unquoted first (backslash
// escapes included), then one round of percent-decoding is done, which
// must yield UTF-8 without control characters.
func decodeHeaderValue(raw string) (string, string) {
	if r := checkHeaderChars(raw); r != "" {
		return "", r
	}
	s := strings.Trim(raw, " \t")
	if strings.HasPrefix(s, `"`) {
		u, reason := unquote(s)
		if reason != "" {
			return "", reason
		}
		s = u
	}
	if strings.IndexByte(s, '%') < 0 {
		return s, checkString(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Sprintf("malformed percent-encoding at offset %d: %q is truncated", i, s[i:])
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Sprintf("malformed percent-encoding at offset %d: %q is not %%XX with hex digits", i, s[i:i+3])
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(out) {
		return "", "percent-encoded bytes are not valid UTF-8"
	}
	v := string(out)
	return v, checkString(v)
}

// unquote reads an RFC 7230 quoted-string that must span all of s.
func unquote(s string) (string, string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "malformed quoted string: trailing backslash"
			}
			i++
			b.WriteByte(s[i])
		case '"':
			if i != len(s)-1 {
				return "", "malformed quoted string: text after the closing quote"
			}
			return b.String(), ""
		default:
			b.WriteByte(c)
		}
	}
	return "", "malformed quoted string: missing closing quote"
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
