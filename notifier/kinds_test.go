package notifier

import (
	"slices"
	"testing"

	"github.com/tradewind/tradewind/events"
)

// TestRenderedKindsAreTheKnownKinds: the preferences API accepts exactly
// the kinds the notifier makes (events.NotificationKinds).
func TestRenderedKindsAreTheKnownKinds(t *testing.T) {
	var kinds []string
	for _, r := range defaultRenderers() {
		kinds = append(kinds, r.kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, events.NotificationKinds()) {
		t.Fatalf("renderers make %v, events.NotificationKinds lists %v", kinds, events.NotificationKinds())
	}
}
