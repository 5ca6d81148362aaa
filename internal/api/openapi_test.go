package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/docs/openapi"
	"github.com/tradewind/tradewind/internal/api"
	"github.com/tradewind/tradewind/internal/readapi"
)

var update = flag.Bool("update", false, "rewrite docs/openapi/openapi.json and docs/asyncapi.yaml")

func TestOpenAPIDocumentIsCurrent(t *testing.T) {
	want, err := api.OpenAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "openapi", "openapi.json")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(openapi.Document, want) {
		t.Fatalf("docs/openapi/openapi.json is stale: run go test ./internal/api -run TestOpenAPIDocumentIsCurrent -update")
	}
}

// readRoutes are the patterns internal/readapi's Register adds, read from
// its source: the read API has no route listing of its own, and this way
// a route added there and not documented fails here.
func readRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "readapi", "api.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) < 8 {
		t.Fatalf("found %d read routes in internal/readapi/api.go: %v; has Register changed shape?", len(out), out)
	}
	return out
}

// TestRouterAndDocumentAgree reads the served document and checks it
// against the live router (the gateway's and the read API's routes on one
// mux, as make run serves them): every documented operation is routed (to
// a registered pattern), and every registered pattern is documented.
func TestRouterAndDocumentAgree(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	reads, err := readapi.New(readapi.Config{Pool: sys.pool})
	if err != nil {
		t.Fatal(err)
	}
	reads.Register(gw.mux)
	routes := append(gw.srv.Routes(), readRoutes(t)...)
	res := gw.do(t, "", request{method: http.MethodGet, path: "/openapi.json", noKey: true})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	decodeJSON(t, res.body, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	mux := gw.mux
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented = append(documented, pattern)
			concrete := strings.NewReplacer("{id}", "0190f1d2-0000-7000-8000-000000000001", "{sku}", "SKU-1").Replace(path)
			req := httptest.NewRequest(strings.ToUpper(method), concrete, nil)
			if _, got := mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
			}
		}
	}
	sort.Strings(documented)
	sort.Strings(routes)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not documented", r)
		}
	}
	if len(documented) != len(routes) {
		t.Errorf("documented %v, routed %v", documented, routes)
	}
	page := gw.do(t, "", request{method: http.MethodGet, path: "/docs", noKey: true})
	if page.status != 200 || !strings.Contains(string(page.body), "/openapi.json") {
		t.Errorf("/docs: %d", page.status)
	}
}

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, h := range []string{api.HeaderRequestID, api.HeaderCorrelationID, api.HeaderTraceparent, api.HeaderIdempotencyKey,
		api.HeaderReplayed, api.HeaderPosition, api.HeaderAcceptVersion, api.HeaderSchemaVersion} {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("header %q is not canonical (%q): accepted() indexes http.Header with it directly", h, c)
		}
	}
}
