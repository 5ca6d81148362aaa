package sagas

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var update = flag.Bool("update", false, "rewrite the table in README.md from order.go")

// TestTableMatchesWiredReactions walks the saga table against the
// reactions the roles wire: every wired reaction is a row with the same
// participant (= role), trigger and emitted types, and every row is wired.
func TestTableMatchesWiredReactions(t *testing.T) {
	wired, err := app.Reactions(config.Config{OrderDeadline: 30e9})
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]Step{}
	for _, s := range slices.Concat(Order, Feeders) {
		if _, dup := table[s.Name]; dup {
			t.Errorf("step %s appears twice in the table", s.Name)
		}
		table[s.Name] = s
	}
	seen := map[string]bool{}
	for role, reactions := range wired {
		for _, r := range reactions {
			seen[r.Step] = true
			s, ok := table[r.Step]
			switch {
			case !ok:
				t.Errorf("role %s wires reaction %q (%s → %v), missing from the saga table", role, r.Step, Short(r.Trigger), r.Emits)
				continue
			case r.Participant != role || s.Participant != role:
				t.Errorf("step %s: table says participant %s, code says %s in role %s", r.Step, s.Participant, r.Participant, role)
			case s.Trigger != r.Trigger:
				t.Errorf("step %s: table trigger %s, code trigger %s", r.Step, s.Trigger, r.Trigger)
			}
			if !slices.Equal(slices.Sorted(slices.Values(s.Emits)), slices.Sorted(slices.Values(r.Emits))) {
				t.Errorf("step %s: table emits %v, code emits %v", r.Step, s.Emits, r.Emits)
			}
		}
	}
	for name := range table {
		if !seen[name] {
			t.Errorf("table step %s is wired by no role", name)
		}
	}
}

// TestEveryCompensationIsAStep checks the compensation column names steps.
func TestEveryCompensationIsAStep(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Order {
		names[s.Name] = true
	}
	for _, s := range Order {
		if s.Compensation == "" {
			continue
		}
		first := strings.Fields(s.Compensation)[0]
		if !names[first] {
			t.Errorf("step %s: compensation %q does not start with a step name", s.Name, s.Compensation)
		}
	}
	if names[handlers.Deadline] {
		t.Error("a step is named like the deadline trigger")
	}
}

const (
	beginMarker = "<!-- BEGIN GENERATED TABLE"
	endMarker   = "<!-- END GENERATED TABLE -->"
)

func generated() string {
	return "<!-- BEGIN GENERATED TABLE: edit sagas/order.go, then run\ngo test ./sagas -run TestReadmeTableIsCurrent -update -->\n" +
		"### Steps of an order\n\n" + Markdown(Order) +
		"\n### Feeding the saga (commands from producer services)\n\n" + Markdown(Feeders) + endMarker
}

func TestReadmeTableIsCurrent(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the generated table markers")
	}
	want := s[:i] + generated() + s[j+len(endMarker):]
	if want == s {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Error("README.md's saga table is stale: run go test ./sagas -run TestReadmeTableIsCurrent -update")
}
