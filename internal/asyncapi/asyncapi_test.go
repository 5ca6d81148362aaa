package asyncapi_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/asyncapi"
)

var update = flag.Bool("update", false, "rewrite docs/asyncapi.yaml")

var path = filepath.Join("..", "..", "docs", "asyncapi.yaml")

func TestDocumentIsCurrent(t *testing.T) {
	want, err := asyncapi.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/asyncapi.yaml is stale: run go test ./internal/asyncapi -run TestDocumentIsCurrent -update")
	}
}

// TestDocumentNamesEveryTypeAndSubject parses the YAML and checks every
// catalogued type and version appears on its subject.
func TestDocumentNamesEveryTypeAndSubject(t *testing.T) {
	b, err := asyncapi.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AsyncAPI string `yaml:"asyncapi"`
		Channels map[string]struct {
			Address  string         `yaml:"address"`
			Messages map[string]any `yaml:"messages"`
		} `yaml:"channels"`
		Components struct {
			Messages map[string]struct {
				Name string `yaml:"name"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi %q", doc.AsyncAPI)
	}
	for _, s := range events.All() {
		name := strings.TrimSuffix(s.SchemaFile(), ".json")
		if doc.Components.Messages[name].Name != s.Type() {
			t.Errorf("%s: no message %s", s.Type(), name)
		}
		found := false
		for _, ch := range doc.Channels {
			prefix := strings.TrimSuffix(s.SubjectFilter(), "*")
			if _, ok := ch.Messages[name]; ok && (ch.Address == s.SubjectFilter() || strings.HasPrefix(ch.Address, prefix) || s.Kind == events.Notification) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: on no channel with address %s", s.Type(), s.SubjectFilter())
		}
	}
}

// TestOfficialParserAcceptsTheDocument runs the official AsyncAPI parser
// (web/apitools, `npm ci` there) on docs/asyncapi.yaml: generators and the
// studio read the document through it. Skipped without node or the
// installed parser.
func TestOfficialParserAcceptsTheDocument(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	tools := filepath.Join("..", "..", "web", "apitools")
	if _, err := os.Stat(filepath.Join(tools, "node_modules", "@asyncapi", "parser")); err != nil {
		t.Skip("the AsyncAPI parser is not installed: cd web/apitools && npm ci")
	}
	doc, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "parse-asyncapi.mjs", doc)
	cmd.Dir = tools
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the official AsyncAPI parser rejects docs/asyncapi.yaml: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
