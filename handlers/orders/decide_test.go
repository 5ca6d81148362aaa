package orders

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
