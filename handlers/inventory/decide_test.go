package inventory

import (
	"maps"
	"slices"
	"testing"
)

func TestDecideCommitByReservationStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		want   commitOutcome
	}{
		{stockReserved, commitApply},
		{"", commitWait},
		{stockReleased, commitIgnore},
		{stockCommitted, commitIgnore},
		{stockReturned, commitIgnore},
		{"rejected", commitIgnore},
		{"cancelled", commitIgnore},
	} {
		if got := decideCommit(tc.status); got != tc.want {
			t.Errorf("decideCommit(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestPlanCommitsAppliesAnOrdersMessagesInStreamOrder(t *testing.T) {
	t.Parallel()
	status := map[string]string{"a": stockReserved, "b": stockReserved, "c": stockReleased}
	before := maps.Clone(status)
	for _, tc := range []struct {
		name string
		keys []string
		want []commitStep
	}{
		{"one each", []string{"a", "b", "c"}, []commitStep{
			{commitApply, stockReserved}, {commitApply, stockReserved}, {commitIgnore, stockReleased}}},
		{"a duplicate after a commit is ignored", []string{"a", "b", "a"}, []commitStep{
			{commitApply, stockReserved}, {commitApply, stockReserved}, {commitIgnore, stockCommitted}}},
		{"no row waits", []string{"a", "x"}, []commitStep{{commitApply, stockReserved}, {commitWait, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planCommits(status, tc.keys); !slices.Equal(got, tc.want) {
				t.Errorf("planCommits(%q) = %v, want %v", tc.keys, got, tc.want)
			}
		})
	}
	if !maps.Equal(status, before) {
		t.Errorf("planCommits modified its input: %v, was %v", status, before)
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
