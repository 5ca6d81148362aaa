package handlers_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// sqlStatement tells a literal holding SQL from one holding, say, an
	// event's name (orders.placed) in an error message.
	sqlStatement = regexp.MustCompile(`\b(SELECT|INSERT|UPDATE|DELETE)\b`)
	// schemaTable matches a schema-qualified table name in SQL.
	schemaTable = regexp.MustCompile(`\b(core|orders|inventory|payments|public|proj)\.([a-z_]+)\b`)
)

// TestAParticipantNamesOnlyItsOwnTables: the SQL in a participant's
// package (its string literals, tests excepted) names tables of its own
// schema only — never another participant's, the read models or core,
// whose saga log the shared handlers package writes. What a participant
// knows of the others comes on the events it handles.
func TestAParticipantNamesOnlyItsOwnTables(t *testing.T) {
	t.Parallel()
	for _, own := range []string{"orders", "inventory", "payments"} {
		files, err := filepath.Glob(filepath.Join(own, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no Go files in handlers/%s", own)
		}
		fset := token.NewFileSet()
		owned := 0 // statements naming its own tables: the check sees the SQL
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || !sqlStatement.MatchString(lit.Value) {
					return true
				}
				for _, m := range schemaTable.FindAllStringSubmatch(lit.Value, -1) {
					if m[1] == own {
						owned++
					} else {
						t.Errorf("%s: the %s participant names %s, a table of schema %s", fset.Position(lit.Pos()), own, m[0], m[1])
					}
				}
				return true
			})
		}
		if owned == 0 {
			t.Errorf("found no SQL naming a table of schema %s in handlers/%s: is the check still reading the SQL?", own, own)
		}
	}
}
