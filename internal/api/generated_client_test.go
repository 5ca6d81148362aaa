package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/internal/auth"
)

// oapiCodegen is the standard Go generator the test runs on the document.
const oapiCodegen = "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2"

// clientMain places an order with the generated client: the types, the
// parameters (Idempotency-Key) and the decoded 202 are the generator's.
const clientMain = `package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	server, key := os.Args[1], os.Args[2]
	c, err := NewClientWithResponses(server, WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}))
	if err != nil {
		panic(err)
	}
	order := OrdersPlaceV2{CustomerId: "c-1", Currency: "EUR", Lines: []OrdersPlaceV2Line{{Sku: "SKU-1", Quantity: 2, UnitPrice: 1250}}}
	body, err := json.Marshal(order)
	if err != nil {
		panic(err)
	}
	res, err := c.OrdersPlaceWithBodyWithResponse(context.Background(), &OrdersPlaceParams{IdempotencyKey: "generated-client-1"}, "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	if res.JSON202 == nil {
		fmt.Printf("status %d: %s\n", res.StatusCode(), res.Body)
		os.Exit(1)
	}
	fmt.Printf("accepted id=%s position=%s\n", res.JSON202.Id, res.JSON202.Position)
}
`

// TestAGeneratedClientPlacesAnOrder generates a Go client from the served
// document with oapi-codegen, compiles it in a module of its own and
// places an order with it against a running gateway. It needs the Go
// module proxy (the generator and its runtime); skipped under -short.
func TestAGeneratedClientPlacesAnOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads and runs a code generator")
	}
	sys := newSystem(t)
	gw := sys.gateway()
	dir := t.TempDir()
	doc := filepath.Join(dir, "openapi.json")
	res := gw.do(t, "", request{method: "GET", path: "/openapi.json", noKey: true})
	if err := os.WriteFile(doc, res.body, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tradewindclient\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(clientMain), 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd("run", oapiCodegen, "-generate", "types,client", "-package", "main", "-o", "client.gen.go", doc)
	goCmd("mod", "tidy")
	goCmd("build", "-o", "client", ".")
	out, err := exec.Command(filepath.Join(dir, "client"), gw.http.URL, sys.apiKey(auth.ScopeAll)).CombinedOutput()
	if err != nil {
		t.Fatalf("the generated client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "accepted id=") || !strings.Contains(string(out), "position=COMMANDS:") {
		t.Errorf("the generated client said: %s", out)
	}
	t.Logf("%s", out)
}
