package projector

import (
	"slices"
	"testing"
)

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"evt.orders.placed.*", "evt.orders.placed.o-1", true},
		{"evt.orders.placed.*", "evt.orders.placed", false},
		{"evt.orders.placed.*", "evt.orders.placed.o-1.x", false},
		{"evt.orders.placed.*", "evt.orders.confirmed.o-1", false},
		{"evt.>", "evt.orders.placed.o-1", true},
		{"evt.>", "evt", false},
		{"evt.*.placed.*", "evt.orders.placed.o-1", true},
		{"evt.orders.placed.o-1", "evt.orders.placed.o-1", true},
		{"evt.orders.placed.o-1", "evt.orders.placed.o-2", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
		}
	}
}

func TestUnionSubjects(t *testing.T) {
	tests := []struct {
		name string
		sets [][]string
		want []string
	}{
		{"duplicates once, first-seen order",
			[][]string{{"evt.a.x.*", "evt.b.y.*"}, {"evt.b.y.*", "evt.c.z.*"}, {"evt.a.x.*"}},
			[]string{"evt.a.x.*", "evt.b.y.*", "evt.c.z.*"}},
		{"a covering filter drops what it covers",
			[][]string{{"evt.a.x.*"}, {"evt.a.>"}, {"evt.a.*.*", "evt.b.y.*"}},
			[]string{"evt.a.>", "evt.b.y.*"}},
		{"a literal is covered by its wildcard",
			[][]string{{"evt.a.x.o-1"}, {"evt.a.x.*"}},
			[]string{"evt.a.x.*"}},
		{"different depths do not cover each other",
			[][]string{{"evt.a.*"}, {"evt.a.x.*"}},
			[]string{"evt.a.*", "evt.a.x.*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unionSubjects(tt.sets); !slices.Equal(got, tt.want) {
				t.Errorf("unionSubjects = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRoute: each projection gets its own copies of the events its
// filters match, in stream order; a projection with none gets none.
func TestRoute(t *testing.T) {
	evs := []Event{
		{Seq: 1, natsSubject: "evt.orders.placed.o-1"},
		{Seq: 2, natsSubject: "evt.catalog.category.books"},
		{Seq: 3, natsSubject: "evt.orders.confirmed.o-1"},
		{Seq: 4, natsSubject: "evt.payments.refunded.o-1"},
	}
	sets := [][]string{
		{"evt.orders.placed.*", "evt.orders.confirmed.*"},
		{"evt.catalog.category.*", "evt.orders.placed.*"},
		{"evt.customers.upserted.*"},
	}
	got := route(evs, sets)
	seqs := func(evs []Event) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	want := [][]uint64{{1, 3}, {1, 2}, nil}
	for i := range sets {
		if !slices.Equal(seqs(got[i]), want[i]) {
			t.Errorf("projection %d: %v, want %v", i, seqs(got[i]), want[i])
		}
	}
	got[0][0].Prepared = "mine"
	if got[1][0].Prepared != nil || evs[0].Prepared != nil {
		t.Error("routed events share Prepared: one projection's Prepare would overwrite another's")
	}
}
