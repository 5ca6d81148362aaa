package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/tradewind/tradewind/docs/openapi"
	"github.com/tradewind/tradewind/internal/auth"
)

// TestOpenAPIDocumentPassesAStandardValidator runs libopenapi-validator's
// document validation (the document against the OpenAPI 3.1 schema) and
// builds libopenapi's model, which resolves every reference, on the
// served document: what Redocly and generators read.
func TestOpenAPIDocumentPassesAStandardValidator(t *testing.T) {
	doc, err := libopenapi.NewDocument(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("libopenapi cannot build the model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s (spec line %d)", e.Message, e.Reason, e.SpecLine)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s (line %d)", se.Reason, se.KeywordLocation, se.Line)
			}
		}
	}
}

// TestOpenAPIDocumentHasNoUnresolvedRef resolves every local $ref of the
// document as a JSON pointer (the schemas' own $defs once pointed at a
// #/$defs the document does not have).
func TestOpenAPIDocumentHasNoUnresolvedRef(t *testing.T) {
	var root any
	if err := json.Unmarshal(openapi.Document, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("%s: $ref %q is not local", at, ref)
				} else if !resolves(root, ref[2:]) {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, c := range v {
				walk(at+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				walk(at+"/[]", c)
			}
		}
	}
	walk("", root)
}

func resolves(root any, pointer string) bool {
	cur := root
	for _, tok := range strings.Split(pointer, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[tok]; !ok {
			return false
		}
	}
	return true
}

// TestAPlacedOrderMatchesTheDocument places an order through a gateway
// and checks the request and the 202 against the document with the
// validator, as a generated client would rely on them.
func TestAPlacedOrderMatchesTheDocument(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	req, err := http.NewRequest(http.MethodPost, gw.http.URL+"/v1/orders", strings.NewReader(validOrder))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sys.apiKey(auth.ScopeAll))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	exchangeMatchesDocument(t, gw.http.Client(), req, validOrder, http.StatusAccepted)
}

// exchangeMatchesDocument sends req (whose body is reqBody), wants status,
// and checks the request and the response against the served OpenAPI
// document with the standard validator.
func exchangeMatchesDocument(t *testing.T, c *http.Client, req *http.Request, reqBody string, status int) {
	t.Helper()
	doc, err := libopenapi.NewDocument(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	// The validator reads both bodies again.
	req.Body = io.NopCloser(strings.NewReader(reqBody))
	res.Body = io.NopCloser(bytes.NewReader(body))
	if ok, verrs := v.ValidateHttpRequestResponse(req, res); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s (spec line %d)", e.Message, e.Reason, e.SpecLine)
		}
	}
}
