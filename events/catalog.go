// Package events is the catalogue of Tradewind's messages and the envelope
// they travel in.
//
// Every message on NATS is a CloudEvent 1.0. Its type is
// com.tradewind.<context>.<name>.v<major>; commands travel on
// cmd.<context>.<name>, domain events on evt.<context>.<name>.<aggregate id>
// and notifications on ntf.<channel...>. The catalogue below is the single
// place that knows which types exist, which are commands, and where each is
// routed; the JSON Schema for each type lives in schemas/ under
// <context>.<name>.v<major>.json.
package events

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Kind tells how a message type is routed and who may send it.
type Kind int

const (
	// Command is a request sent by a producer service, routed to cmd.<context>.<name>.
	Command Kind = iota + 1
	// Event is a fact emitted by Tradewind, routed to evt.<context>.<name>.<subject>.
	Event
	// Notification is a user-facing message, routed to ntf.<subject>.
	Notification
)

func (k Kind) String() string {
	switch k {
	case Command:
		return "command"
	case Event:
		return "event"
	case Notification:
		return "notification"
	}
	return "unknown"
}

// TypePrefix starts every Tradewind CloudEvent type.
const TypePrefix = "com.tradewind."

// SchemaBase is the URI prefix of every dataschema attribute.
const SchemaBase = "https://schemas.tradewind.dev/"

// Spec describes one message type and major version.
type Spec struct {
	Context string // bounded context, e.g. "orders"
	Name    string // verb for commands, past-tense fact for events
	Version int    // major version
	Kind    Kind
}

// Type is the CloudEvent type attribute, e.g. com.tradewind.orders.placed.v1.
func (s Spec) Type() string {
	return TypePrefix + s.Context + "." + s.Name + ".v" + strconv.Itoa(s.Version)
}

// SchemaFile is the file name of the JSON Schema under schemas/.
func (s Spec) SchemaFile() string {
	return s.Context + "." + s.Name + ".v" + strconv.Itoa(s.Version) + ".json"
}

// SchemaURI is the dataschema attribute (and the schema's $id).
func (s Spec) SchemaURI() string { return SchemaBase + s.SchemaFile() }

// Subject is the NATS subject a message of this type with the given
// CloudEvent subject (aggregate id, or channel for notifications) travels on.
func (s Spec) Subject(ceSubject string) string {
	switch s.Kind {
	case Command:
		return CommandPrefix + s.Context + "." + s.Name
	case Notification:
		return NotificationPrefix + ceSubject
	default:
		return EventPrefix + s.Context + "." + s.Name + "." + ceSubject
	}
}

// SubjectFilter is the NATS subject filter matching every message of this
// type regardless of aggregate (version-independent: versions share subjects).
func (s Spec) SubjectFilter() string {
	switch s.Kind {
	case Command:
		return CommandPrefix + s.Context + "." + s.Name
	case Notification:
		return NotificationPrefix + ">"
	default:
		return EventPrefix + s.Context + "." + s.Name + ".*"
	}
}

var catalog = map[string]Spec{}

// register adds a spec to the catalogue and returns its type string.
// It panics on duplicates: the catalogue is built at init time.
func register(context, name string, version int, kind Kind) string {
	s := Spec{Context: context, Name: name, Version: version, Kind: kind}
	t := s.Type()
	if _, dup := catalog[t]; dup {
		panic("events: duplicate type " + t)
	}
	catalog[t] = s
	return t
}

// Lookup returns the spec of a CloudEvent type.
func Lookup(ceType string) (Spec, bool) {
	s, ok := catalog[ceType]
	return s, ok
}

// MustLookup is Lookup for types known at compile time.
func MustLookup(ceType string) Spec {
	s, ok := catalog[ceType]
	if !ok {
		panic(fmt.Sprintf("events: unknown type %q", ceType))
	}
	return s
}

// All returns every registered spec, sorted by type.
func All() []Spec {
	out := make([]Spec, 0, len(catalog))
	for _, s := range catalog {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}

// ParseType splits a type string of the Tradewind form into its parts
// without consulting the catalogue.
func ParseType(ceType string) (context, name string, version int, err error) {
	rest, ok := strings.CutPrefix(ceType, TypePrefix)
	if !ok {
		return "", "", 0, fmt.Errorf("type %q: must start with %q", ceType, TypePrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "v") {
		return "", "", 0, fmt.Errorf("type %q: want %s<context>.<name>.v<major>", ceType, TypePrefix)
	}
	v, err := strconv.Atoi(parts[2][1:])
	if err != nil || v < 1 {
		return "", "", 0, fmt.Errorf("type %q: bad major version %q", ceType, parts[2])
	}
	return parts[0], parts[1], v, nil
}
