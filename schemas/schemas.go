// Package schemas holds the JSON Schema (draft 2020-12) of the data of
// every catalogued Tradewind message type, embedded in the binary, and
// validates message data against them.
//
// The schema of a type lives in <context>.<name>.v<major>.json (see
// events.Spec.SchemaFile) and its "$id" is the type's dataschema URI
// (events.Spec.SchemaURI). Formats (uuid, date-time) are asserted, and
// every object refuses unknown properties.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"mime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/tradewind/tradewind/events"
)

//go:embed *.json
var files embed.FS

// MetaSchema is the "$schema" every schema file declares.
const MetaSchema = "https://json-schema.org/draft/2020-12/schema"

var (
	// ErrUnknownType is wrapped by the error for a type the catalogue
	// does not know.
	ErrUnknownType = errors.New("unknown message type")
	// ErrWrongSchema is wrapped by the error for an event whose
	// dataschema is not the schema of its type.
	ErrWrongSchema = errors.New("wrong schema version")
	// ErrContentType is wrapped by the error for an event whose data is
	// not declared as JSON.
	ErrContentType = errors.New("unsupported datacontenttype")
)

// ValidationError tells how message data breaks its schema.
type ValidationError struct {
	Type    string // CloudEvent type
	Field   string // JSON pointer of the offending value, e.g. /lines/0/quantity; "" for the whole document
	Problem string // what was expected, and what was found
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Type + ": " + e.Problem
	}
	return e.Type + ": " + e.Field + ": " + e.Problem
}

// FS is the embedded schema files, named as events.Spec.SchemaFile says.
func FS() fs.FS { return files }

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema // by CloudEvent type
	compileErr  error
)

func load() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() { compiled, compileErr = compileAll() })
	return compiled, compileErr
}

// compileAll compiles the schema of every catalogued type, checking that
// its file exists and declares the right $id and $schema.
func compileAll() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	specs := events.All()
	for _, s := range specs {
		b, err := files.ReadFile(s.SchemaFile())
		if err != nil {
			return nil, fmt.Errorf("schemas: no schema for %s: %w", s.Type(), err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", s.SchemaFile(), err)
		}
		obj, _ := doc.(map[string]any)
		if id, _ := obj["$id"].(string); id != s.SchemaURI() {
			return nil, fmt.Errorf("schemas: %s: $id is %q, want %q", s.SchemaFile(), id, s.SchemaURI())
		}
		if ms, _ := obj["$schema"].(string); ms != MetaSchema {
			return nil, fmt.Errorf("schemas: %s: $schema is %q, want %q", s.SchemaFile(), ms, MetaSchema)
		}
		if err := c.AddResource(s.SchemaURI(), doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", s.SchemaFile(), err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(specs))
	for _, s := range specs {
		sch, err := c.Compile(s.SchemaURI())
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", s.SchemaFile(), err)
		}
		out[s.Type()] = sch
	}
	return out, nil
}

// Validate checks JSON data against the schema of a CloudEvent type. A
// type not in the catalogue gives an error wrapping ErrUnknownType that
// lists the known versions of the same context and name; data that is not
// JSON or breaks the schema gives a *ValidationError naming the most
// specific field at fault.
func Validate(ceType string, data []byte) error {
	if _, err := schemaOf(ceType); err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &ValidationError{Type: ceType, Problem: "no data: want a JSON object"}
	}
	if !utf8.Valid(data) {
		return &ValidationError{Type: ceType, Problem: "invalid JSON: not valid UTF-8"}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &ValidationError{Type: ceType, Problem: jsonProblem(err)}
	}
	return ValidateValue(ceType, doc)
}

// ValidateValue is Validate for data already decoded, as encoding/json
// decodes into any with UseNumber (objects as map[string]any, numbers as
// json.Number, so that huge values are judged as written). It spares the
// caller that holds the decoded document a second parse.
func ValidateValue(ceType string, doc any) error {
	sch, err := schemaOf(ceType)
	if err != nil {
		return err
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Type: ceType, Problem: err.Error()}
	}
	field, problem := mostSpecific(ve)
	return &ValidationError{Type: ceType, Field: field, Problem: problem}
}

func schemaOf(ceType string) (*jsonschema.Schema, error) {
	schs, err := load()
	if err != nil {
		return nil, err
	}
	sch, ok := schs[ceType]
	if !ok {
		return nil, unknownType(ceType)
	}
	return sch, nil
}

// jsonProblem words a JSON syntax error.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "invalid JSON: unexpected end of input"
	}
	return "invalid JSON: " + err.Error()
}

// ValidateEvent checks an event's envelope against the catalogue (its
// type is known, its dataschema, when set, is its type's schema, its
// datacontenttype is JSON or absent), then its data against the schema.
func ValidateEvent(e *event.Event) error {
	if e == nil {
		return errors.New("schemas: nil event")
	}
	t := e.Type()
	spec, ok := events.Lookup(t)
	if !ok {
		return unknownType(t)
	}
	if ds := e.DataSchema(); ds != "" && ds != spec.SchemaURI() {
		return fmt.Errorf("%w: event %s of type %s has dataschema %s, but the schema of %s is %s",
			ErrWrongSchema, e.ID(), t, ds, t, spec.SchemaURI())
	}
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != event.ApplicationJSON {
			return fmt.Errorf("%w %q: event %s of type %s must carry %s data", ErrContentType, ct, e.ID(), t, event.ApplicationJSON)
		}
	}
	return Validate(t, e.Data())
}

// CheckEmitted validates an event Tradewind itself emits (outbox.Add, the
// notifier) in test binaries, and does nothing in a production binary.
//
// What Tradewind emits is built from the Go structs of package events,
// and TestEveryMessageStructAgreesWithItsSchema proves each struct and its
// schema agree; the values each participant puts in them are checked by
// its tests (handlertest validates every event a reaction emits, and every
// in-process system test runs through here). Validating them again at run
// time decoded each into map[string]any and walked its schema: 9.2 % of
// serve's CPU at 580 orders/s (a CPU profile of `tradewind load --mix
// happy=100`, docs/architecture.md). Input that crosses a trust boundary
// (commands from producers, the gateway's requests, notifications a ws
// server fans out) is validated fully, always (ValidateEvent).
func CheckEmitted(e *event.Event) error {
	if !testing.Testing() {
		return nil
	}
	return ValidateEvent(e)
}

// unknownType builds the error for a type missing from the catalogue,
// listing the versions that exist of the same context and name.
func unknownType(ceType string) error {
	ctx, name, _, err := events.ParseType(ceType)
	var versions []int
	if err == nil {
		for _, s := range events.All() {
			if s.Context == ctx && s.Name == name {
				versions = append(versions, s.Version)
			}
		}
	}
	if len(versions) == 0 {
		return fmt.Errorf("%w %s", ErrUnknownType, ceType)
	}
	sort.Ints(versions)
	known := make([]string, len(versions))
	for i, v := range versions {
		known[i] = "v" + strconv.Itoa(v)
	}
	return fmt.Errorf("%w %s (known: %s)", ErrUnknownType, ceType, strings.Join(known, ", "))
}

// leaf is one elementary failure: the pointer of the value at fault and
// what was expected of it.
type leaf struct {
	field   string
	depth   int
	problem string
}

// mostSpecific picks, among the leaves of the error tree, the failure at
// the deepest instance location (a missing or unknown property counts as
// the property's own location); ties go to the first in pointer order.
func mostSpecific(ve *jsonschema.ValidationError) (string, string) {
	var leaves []leaf
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		leaves = append(leaves, describe(e))
	}
	walk(ve)
	if len(leaves) == 0 {
		return pointer(ve.InstanceLocation), ve.Error()
	}
	sort.SliceStable(leaves, func(i, j int) bool {
		if leaves[i].depth != leaves[j].depth {
			return leaves[i].depth > leaves[j].depth
		}
		return leaves[i].field < leaves[j].field
	})
	return leaves[0].field, leaves[0].problem
}

// describe words one leaf failure as what was expected.
func describe(e *jsonschema.ValidationError) leaf {
	loc := e.InstanceLocation
	l := leaf{field: pointer(loc), depth: len(loc)}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		missing := append([]string(nil), k.Missing...)
		l.field = pointer(append(append([]string(nil), loc...), missing[0]))
		l.depth++
		l.problem = "is required but missing"
		if len(missing) > 1 {
			l.problem += " (also missing: " + strings.Join(missing[1:], ", ") + ")"
		}
	case *kind.AdditionalProperties:
		props := append([]string(nil), k.Properties...)
		sort.Strings(props)
		l.field = pointer(append(append([]string(nil), loc...), props[0]))
		l.depth++
		l.problem = "is not an allowed property"
		if len(props) > 1 {
			l.problem += " (nor are: " + strings.Join(props[1:], ", ") + ")"
		}
	case *kind.Type:
		l.problem = fmt.Sprintf("must be %s but found %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Minimum:
		l.problem = fmt.Sprintf("must be >= %s but found %s", rat(k.Want), rat(k.Got))
	case *kind.Maximum:
		l.problem = fmt.Sprintf("must be <= %s but found %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMinimum:
		l.problem = fmt.Sprintf("must be > %s but found %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMaximum:
		l.problem = fmt.Sprintf("must be < %s but found %s", rat(k.Want), rat(k.Got))
	case *kind.MultipleOf:
		l.problem = fmt.Sprintf("must be a multiple of %s but found %s", rat(k.Want), rat(k.Got))
	case *kind.MinLength:
		l.problem = fmt.Sprintf("must be at least %d characters long but has %d", k.Want, k.Got)
	case *kind.MaxLength:
		l.problem = fmt.Sprintf("must be at most %d characters long but has %d", k.Want, k.Got)
	case *kind.Pattern:
		l.problem = fmt.Sprintf("must match %s but found %q", k.Want, k.Got)
	case *kind.MinItems:
		l.problem = fmt.Sprintf("must have at least %d items but has %d", k.Want, k.Got)
	case *kind.MaxItems:
		l.problem = fmt.Sprintf("must have at most %d items but has %d", k.Want, k.Got)
	case *kind.Format:
		l.problem = fmt.Sprintf("must be a valid %s but found %s (%v)", k.Want, short(k.Got), k.Err)
	case *kind.FalseSchema:
		l.problem = "is not allowed"
	default:
		// The library's own wording, without its "at '<pointer>': " prefix.
		msg := (&jsonschema.ValidationError{SchemaURL: e.SchemaURL, InstanceLocation: loc, ErrorKind: e.ErrorKind}).Error()
		if i := strings.Index(msg, "': "); i >= 0 {
			msg = msg[i+3:]
		}
		l.problem = msg
	}
	return l
}

// pointer renders an instance location as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// rat prints a number: exactly when it is a reasonably short integer,
// else in scientific notation.
func rat(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		if s := r.Num().String(); len(s) <= 24 {
			return s
		}
	}
	return new(big.Float).SetRat(r).Text('g', 10)
}

// short quotes a found value, cut to a readable length.
func short(v any) string {
	s := fmt.Sprint(v)
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:60]) + "..."
	}
	return strconv.Quote(s)
}
