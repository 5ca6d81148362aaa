package typesgen_test

import (
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
