package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/schemas"
)

// TestEveryMessageStructAgreesWithItsSchema: for every catalogued type, the
// Go struct that carries its data (events.NewData) and its JSON Schema
// agree:
//   - the same properties at every level, both ways (nested objects and
//     array items included), with a compatible JSON type;
//   - a property is required exactly when its field is not omitempty;
//   - a document generated from the schema, once with every property and
//     once with the required ones only, is valid, decodes into the struct
//     without unknown fields and encodes back to the same document.
func TestEveryMessageStructAgreesWithItsSchema(t *testing.T) {
	t.Parallel()
	for _, spec := range events.All() {
		t.Run(spec.Type(), func(t *testing.T) {
			t.Parallel()
			v, ok := events.NewData(spec.Type())
			if !ok {
				t.Fatalf("no Go struct for %s: add it to events.dataOf", spec.Type())
			}
			raw, err := fs.ReadFile(schemas.FS(), spec.SchemaFile())
			if err != nil {
				t.Fatal(err)
			}
			var root map[string]any
			if err := json.Unmarshal(raw, &root); err != nil {
				t.Fatal(err)
			}
			w := walker{t: t, root: root}
			w.compare(reflect.TypeOf(v).Elem(), root, "")
			for _, full := range []bool{true, false} {
				doc := w.sample(root, full, "")
				b, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				if err := schemas.Validate(spec.Type(), b); err != nil {
					t.Fatalf("generated document (all properties: %v) %s is invalid (fix the generator): %v", full, b, err)
				}
				dst, _ := events.NewData(spec.Type())
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				if err := dec.Decode(dst); err != nil {
					t.Errorf("decode %s into %T: %v", b, dst, err)
					continue
				}
				back, err := json.Marshal(dst)
				if err != nil {
					t.Fatal(err)
				}
				if err := schemas.Validate(spec.Type(), back); err != nil {
					t.Errorf("%T encodes %s, which its schema refuses: %v", dst, back, err)
				}
				var want, got any
				_ = json.Unmarshal(b, &want)
				_ = json.Unmarshal(back, &got)
				if !reflect.DeepEqual(want, got) {
					t.Errorf("%T does not round-trip (all properties: %v):\n schema document %s\n struct encodes  %s", dst, full, b, back)
				}
			}
		})
	}
}

type walker struct {
	t    *testing.T
	root map[string]any
}

// resolve follows a local "$ref" (#/$defs/<name>).
func (w walker) resolve(node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		w.t.Fatalf("unsupported $ref %q", ref)
	}
	defs, _ := w.root["$defs"].(map[string]any)
	def, ok := defs[name].(map[string]any)
	if !ok {
		w.t.Fatalf("$ref %q: no such definition", ref)
	}
	return w.resolve(def)
}

type field struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

func jsonFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, field{name: name, typ: f.Type, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return out
}

func (w walker) compare(t reflect.Type, node map[string]any, path string) {
	node = w.resolve(node)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	typ, _ := node["type"].(string)
	at := path
	if at == "" {
		at = "/"
	}
	switch t.Kind() {
	case reflect.Struct:
		if typ != "object" {
			w.t.Errorf("%s: %s is a struct, the schema says %q", at, t, typ)
			return
		}
		props, _ := node["properties"].(map[string]any)
		required := map[string]bool{}
		if rs, ok := node["required"].([]any); ok {
			for _, r := range rs {
				required[r.(string)] = true
			}
		}
		seen := map[string]bool{}
		for _, f := range jsonFields(t) {
			seen[f.name] = true
			p, ok := props[f.name].(map[string]any)
			if !ok {
				w.t.Errorf("%s/%s: field %s.%s has no property in the schema", path, f.name, t.Name(), f.name)
				continue
			}
			if required[f.name] == f.omitempty {
				w.t.Errorf("%s/%s: required in the schema = %v, but the field's omitempty = %v (want required exactly when not omitempty)",
					path, f.name, required[f.name], f.omitempty)
			}
			w.compare(f.typ, p, path+"/"+f.name)
		}
		var missing []string
		for name := range props {
			if !seen[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		for _, name := range missing {
			w.t.Errorf("%s/%s: property in the schema, no field in %s", path, name, t.Name())
		}
	case reflect.Slice:
		if typ != "array" {
			w.t.Errorf("%s: %s is a slice, the schema says %q", at, t, typ)
			return
		}
		items, _ := node["items"].(map[string]any)
		w.compare(t.Elem(), items, path+"/0")
	case reflect.String:
		if typ != "string" {
			w.t.Errorf("%s: string field, the schema says %q", at, typ)
		}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		if typ != "integer" {
			w.t.Errorf("%s: integer field, the schema says %q", at, typ)
		}
	case reflect.Bool:
		if typ != "boolean" {
			w.t.Errorf("%s: bool field, the schema says %q", at, typ)
		}
	default:
		w.t.Errorf("%s: field of kind %s: extend the test", at, t.Kind())
	}
}

// stringCandidates are tried, in order, against a string property's
// pattern and length limits.
var stringCandidates = []string{"EUR", "GB", "order.placed", "SKU-1", "c-1", "a", sha256Hex, "/v1/images/" + sha256Hex + "/160.jpg"}

// sha256Hex is a content address (a product image's hash).
var sha256Hex = strings.Repeat("ab", 32)

// sample generates a valid value of node: with every property when full,
// else with the required ones only.
func (w walker) sample(node map[string]any, full bool, path string) any {
	node = w.resolve(node)
	num := func(key string) (float64, bool) { f, ok := node[key].(float64); return f, ok }
	if enum, ok := node["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	switch node["type"] {
	case "object":
		out := map[string]any{}
		props, _ := node["properties"].(map[string]any)
		required := map[string]bool{}
		if rs, ok := node["required"].([]any); ok {
			for _, r := range rs {
				required[r.(string)] = true
			}
		}
		for name, p := range props {
			if full || required[name] {
				out[name] = w.sample(p.(map[string]any), full, path+"/"+name)
			}
		}
		return out
	case "array":
		n := 1
		if m, ok := num("minItems"); ok && int(m) > n {
			n = int(m)
		}
		items, _ := node["items"].(map[string]any)
		out := make([]any, n)
		for i := range out {
			out[i] = w.sample(items, full, fmt.Sprintf("%s/%d", path, i))
		}
		return out
	case "integer":
		v := 1.0
		if m, ok := num("minimum"); ok && m > v {
			v = m
		}
		if m, ok := num("maximum"); ok && m < v {
			v = m
		}
		return int64(v)
	case "boolean":
		return true
	case "string":
		switch node["format"] {
		case "uuid":
			return "0192f1c4-7f3a-7b61-9c1e-5f0d3f2b9a10"
		case "date-time":
			return "2026-03-04T05:06:07Z"
		case "email":
			return "ada@example.com"
		}
		minLen, _ := num("minLength")
		maxLen, hasMax := num("maxLength")
		var re *regexp.Regexp
		if p, ok := node["pattern"].(string); ok {
			re = regexp.MustCompile(p)
		}
		for _, c := range stringCandidates {
			c += strings.Repeat("x", max(0, int(minLen)-len(c)))
			if (re == nil || re.MatchString(c)) && (!hasMax || len(c) <= int(maxLen)) {
				return c
			}
		}
		w.t.Fatalf("%s: no candidate string matches pattern %v: extend stringCandidates", path, node["pattern"])
	}
	w.t.Fatalf("%s: unsupported schema type %v: extend the test", path, node["type"])
	return nil
}
