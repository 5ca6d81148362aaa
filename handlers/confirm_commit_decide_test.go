package handlers

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tradewind/tradewind/events"
)

func TestDecideConfirmByStatusAndDeadline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		status   string
		deadline time.Time
		want     confirmOutcome
	}{
		{"pending within its deadline", events.StatusPending, now.Add(time.Second), confirmConfirm},
		{"pending at its deadline exactly", events.StatusPending, now, confirmConfirm},
		{"pending past its deadline", events.StatusPending, now.Add(-time.Nanosecond), confirmTimeout},
		{"already confirmed", events.StatusConfirmed, now.Add(time.Hour), confirmIgnore},
		{"cancelled", events.StatusCancelled, now.Add(time.Hour), confirmIgnore},
		{"cancelled and past its deadline", events.StatusCancelled, now.Add(-time.Hour), confirmIgnore},
		{"rejected", events.StatusRejected, now.Add(time.Hour), confirmIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideConfirm(tc.status, tc.deadline, now); got != tc.want {
				t.Errorf("decideConfirm(%q) = %v, want %v", tc.status, got, tc.want)
			}
		})
	}
}

func TestPlanConfirmsAppliesAnOrdersMessagesInStreamOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)
	orders := map[string]order{
		"a": {status: events.StatusPending, deadline: later},
		"b": {status: events.StatusPending, deadline: earlier},
		"c": {status: events.StatusCancelled, deadline: later},
		"d": {status: events.StatusConfirmed, deadline: later},
	}
	before := maps.Clone(orders)
	for _, tc := range []struct {
		name string
		keys []string
		want []confirmStep
	}{
		{"one each", []string{"a", "b", "c", "d"}, []confirmStep{
			{confirmConfirm, events.StatusPending}, {confirmTimeout, events.StatusPending},
			{confirmIgnore, events.StatusCancelled}, {confirmIgnore, events.StatusConfirmed}}},
		{"a duplicate after a confirmation is ignored", []string{"a", "a", "a"}, []confirmStep{
			{confirmConfirm, events.StatusPending}, {confirmIgnore, events.StatusConfirmed}, {confirmIgnore, events.StatusConfirmed}}},
		{"a duplicate after a timeout is ignored", []string{"b", "a", "b"}, []confirmStep{
			{confirmTimeout, events.StatusPending}, {confirmConfirm, events.StatusPending}, {confirmIgnore, events.StatusCancelled}}},
		{"empty batch", nil, []confirmStep{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planConfirms(orders, tc.keys, now)
			if !slices.Equal(got, tc.want) {
				t.Errorf("planConfirms(%q) = %v, want %v", tc.keys, got, tc.want)
			}
		})
	}
	if !maps.Equal(orders, before) {
		t.Errorf("planConfirms modified its input: %v, was %v", orders, before)
	}
}

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
