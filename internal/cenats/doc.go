// Package cenats is the CloudEvents protocol binding for NATS messages,
// built on the core binding package of github.com/cloudevents/sdk-go/v2
// (the SDK's own NATS protocol modules are not used).
//
// It follows the CloudEvents NATS Protocol Binding. Version 1.0.1 of that
// binding allows only the structured content mode; binary mode, where the
// attributes travel as NATS headers (NATS 2.2 and later), comes from the
// later revision of the binding and is the mode Tradewind publishes in:
//
//   - Binary content mode (Encode, NewMsg): every context attribute and
//     extension is a header named after it with the prefix "ce-"
//     (ce-id, ce-source, ce-specversion, ce-type, ce-time, ...). The value
//     is the attribute's canonical string, percent-encoded by the rules of
//     the CloudEvents HTTP binding: space, double quote, percent and every
//     character outside printable US-ASCII (U+0021-U+007E) are written as
//     the %XX escapes (upper-case hex) of their UTF-8 bytes. The
//     datacontenttype attribute is written both as "content-type" (raw, as
//     the SDK's NATS bindings and HTTP do) and as "ce-datacontenttype"
//     (percent-encoded, as the NATS binding's header-name rule says).
//     The message body is the event data. The header "Nats-Msg-Id" carries
//     the event id so that JetStream drops duplicate publications.
//   - Structured content mode (EncodeStructured): the body is the JSON
//     event format and the header "content-type" is
//     "application/cloudevents+json".
//
// Decode tells the modes apart as the binding says: a content-type of
// application/cloudevents (any suffix and parameters, matched
// case-insensitively) means structured, anything else binary. Header
// names are matched case-insensitively. Header values are unquoted (RFC
// 7230 quoted strings, for older producers) and percent-decoded once;
// malformed escapes, decoded bytes that are not UTF-8 (overlong forms
// included) and control characters are rejected.
//
// Decoding is strict and never panics. Every failure is a *DecodeError
// naming the offending field: the header in binary mode ("ce-id",
// "content-type"), the JSON member in structured mode ("id", "time",
// "data_base64"), "event" for a structured document that is not a JSON
// object, and "data" for the payload (size limit, invalid JSON data). Only
// CloudEvents 1.0 is accepted. Every extension value is decoded as its
// canonical string (binary mode carries nothing else), so the Tradewind
// extensions traceparent, correlationid, causationid and partitionkey are
// always strings, and a message decodes to the same event in both modes.
package cenats
