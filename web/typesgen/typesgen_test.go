package typesgen_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/tradewind/tradewind/schemas"
	"github.com/tradewind/tradewind/web/typesgen"
)

var update = flag.Bool("update", false, "rewrite web/client/events.gen.ts")

const generated = "../client/events.gen.ts"

func TestGeneratedTypesMatchTheSchemas(t *testing.T) {
	got, err := typesgen.Generate(schemas.FS())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(generated, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(generated)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./web/typesgen -update)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is stale: regenerate with `go test ./web/typesgen -update` and rebuild web/ (npm run build)", generated)
	}
}

// TestClientPackageIsVersionedWithTheSchemas: @tradewind/client ships the
// types generated from schemas/, so its version is schemas.Version (which
// schemas' own test makes move with every schema change).
func TestClientPackageIsVersionedWithTheSchemas(t *testing.T) {
	b, err := os.ReadFile("../client/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Name, Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("web/client/package.json: %v", err)
	}
	if pkg.Name != "@tradewind/client" || pkg.Version != schemas.Version {
		t.Fatalf("web/client/package.json is %s@%s, want @tradewind/client@%s (schemas.Version)", pkg.Name, pkg.Version, schemas.Version)
	}
}
