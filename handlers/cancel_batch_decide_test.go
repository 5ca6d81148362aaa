package handlers

import (
	"maps"
	"slices"
	"testing"

	"github.com/tradewind/tradewind/events"
)

func TestDecideCancelPendingByStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{events.StatusPending, true},
		{events.StatusConfirmed, false},
		{events.StatusCancelled, false},
		{events.StatusRejected, false},
	} {
		if got := decideCancelPending(tc.status); got != tc.want {
			t.Errorf("decideCancelPending(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestPlanCancelPendingAppliesAnOrdersMessagesInStreamOrder(t *testing.T) {
	t.Parallel()
	status := map[string]string{"a": events.StatusPending, "b": events.StatusConfirmed, "c": events.StatusCancelled, "d": events.StatusPending}
	before := maps.Clone(status)
	P, C, X := events.StatusPending, events.StatusConfirmed, events.StatusCancelled
	for _, tc := range []struct {
		name string
		keys []string
		want []cancelPendingStep
	}{
		{"one each", []string{"a", "b", "c", "d"}, []cancelPendingStep{{true, P}, {false, C}, {false, X}, {true, P}}},
		{"a duplicate after a cancel is ignored", []string{"a", "d", "a", "a"}, []cancelPendingStep{{true, P}, {true, P}, {false, X}, {false, X}}},
		{"a confirmed order ignores every failure", []string{"b", "b"}, []cancelPendingStep{{false, C}, {false, C}}},
		{"empty batch", nil, []cancelPendingStep{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planCancelPending(status, tc.keys); !slices.Equal(got, tc.want) {
				t.Errorf("planCancelPending(%q) = %v, want %v", tc.keys, got, tc.want)
			}
		})
	}
	if !maps.Equal(status, before) {
		t.Errorf("planCancelPending modified its input: %v, was %v", status, before)
	}
}

func TestDecideReleaseByReservationStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		known  bool
		want   releaseOutcome
	}{
		{"", false, releaseTombstone},
		{stockReserved, true, releaseApply},
		{stockReleased, true, releaseNone},
		{stockCommitted, true, releaseNone},
		{stockReturned, true, releaseNone},
		{"rejected", true, releaseNone},
		{"cancelled", true, releaseNone},
	} {
		if got := decideRelease(tc.status, tc.known); got != tc.want {
			t.Errorf("decideRelease(%q, %v) = %v, want %v", tc.status, tc.known, got, tc.want)
		}
	}
}

func TestPlanReleasesAppliesAnOrdersMessagesInStreamOrder(t *testing.T) {
	t.Parallel()
	status := map[string]string{"r": stockReserved, "c": stockCommitted, "x": "rejected"}
	before := maps.Clone(status)
	for _, tc := range []struct {
		name string
		keys []string
		want []releaseOutcome
	}{
		{"one each", []string{"r", "c", "x", "n"}, []releaseOutcome{releaseApply, releaseNone, releaseNone, releaseTombstone}},
		{"a duplicate after a release does nothing", []string{"r", "r"}, []releaseOutcome{releaseApply, releaseNone}},
		{"a duplicate after a tombstone does nothing", []string{"n", "r", "n"}, []releaseOutcome{releaseTombstone, releaseApply, releaseNone}},
		{"empty batch", nil, []releaseOutcome{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planReleases(status, tc.keys); !slices.Equal(got, tc.want) {
				t.Errorf("planReleases(%q) = %v, want %v", tc.keys, got, tc.want)
			}
		})
	}
	if !maps.Equal(status, before) {
		t.Errorf("planReleases modified its input: %v, was %v", status, before)
	}
}

func TestDecideReturnByReservationStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{stockCommitted, true},
		{"", false},
		{stockReserved, false},
		{stockReleased, false},
		{stockReturned, false},
		{"cancelled", false},
		{"rejected", false},
	} {
		if got := decideReturn(tc.status); got != tc.want {
			t.Errorf("decideReturn(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestPlanReturnsAppliesAnOrdersMessagesInStreamOrder(t *testing.T) {
	t.Parallel()
	status := map[string]string{"c": stockCommitted, "r": stockReleased}
	before := maps.Clone(status)
	for _, tc := range []struct {
		name string
		keys []string
		want []bool
	}{
		{"one each", []string{"c", "r", "n"}, []bool{true, false, false}},
		{"a duplicate after a return does nothing", []string{"c", "r", "c"}, []bool{true, false, false}},
		{"empty batch", nil, []bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planReturns(status, tc.keys); !slices.Equal(got, tc.want) {
				t.Errorf("planReturns(%q) = %v, want %v", tc.keys, got, tc.want)
			}
		})
	}
	if !maps.Equal(status, before) {
		t.Errorf("planReturns modified its input: %v, was %v", status, before)
	}
}
