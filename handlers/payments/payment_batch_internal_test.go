package payments

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecideAuthorize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		p          payment
		want       authorizeAction
		wantStatus string
	}{
		{"new: call the provider", payment{status: payNew}, authorizeCall, payDeciding},
		{"authorized before", payment{status: payAuthorized}, authorizeDecided, payAuthorized},
		{"declined before", payment{status: "declined"}, authorizeDecided, "declined"},
		{"being decided in this batch", payment{status: payDeciding}, authorizeDecided, payDeciding},
		{"cancelled, nothing recorded", payment{status: payNew, orderCancelled: true}, authorizeVoidLost, payNew},
		{"cancelled, declined", payment{status: "declined", orderCancelled: true}, authorizeIgnoreCancelled, "declined"},
		{"cancelled, voided", payment{status: payVoided, orderCancelled: true}, authorizeIgnoreCancelled, payVoided},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, after := decideAuthorize(tc.p)
			if got != tc.want || after.status != tc.wantStatus {
				t.Errorf("decideAuthorize(%+v) = %d, status %q; want %d, %q", tc.p, got, after.status, tc.want, tc.wantStatus)
			}
		})
	}
}

func TestPlanAuthorize(t *testing.T) {
	t.Parallel()
	ps := map[string]payment{
		"new":       {orderID: "new", status: payNew},
		"new2":      {orderID: "new2", status: payNew},
		"decided":   {orderID: "decided", status: payAuthorized},
		"cancelled": {orderID: "cancelled", status: "declined", orderCancelled: true},
		"lost":      {orderID: "lost", status: payNew, orderCancelled: true},
	}
	for _, tc := range []struct {
		name       string
		orders     []string
		want       []authorizeAction
		wantBefore []string // the status each message saw
		wantOK     bool
	}{
		{"one of each simple path", []string{"new", "decided", "cancelled"},
			[]authorizeAction{authorizeCall, authorizeDecided, authorizeIgnoreCancelled}, []string{payNew, payAuthorized, "declined"}, true},
		{"a duplicate is decided by the first", []string{"new", "new2", "new", "new"},
			[]authorizeAction{authorizeCall, authorizeCall, authorizeDecided, authorizeDecided}, []string{payNew, payNew, payDeciding, payDeciding}, true},
		{"a cancelled duplicate is ignored twice", []string{"cancelled", "cancelled"},
			[]authorizeAction{authorizeIgnoreCancelled, authorizeIgnoreCancelled}, []string{"declined", "declined"}, true},
		{"a lost authorization is voided in the batch", []string{"new", "lost"},
			[]authorizeAction{authorizeCall, authorizeVoidLost}, []string{payNew, payNew}, true},
		{"two reservations of a lost authorization are left to Handle", []string{"lost", "new", "lost"}, nil, nil, false},
		{"a missing row is left to Handle", []string{"new", "absent"}, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts, before, ok := planAuthorize(ps, tc.orders)
			if ok != tc.wantOK || !slices.Equal(acts, tc.want) {
				t.Fatalf("planAuthorize(%v) = %v, %v; want %v, %v", tc.orders, acts, ok, tc.want, tc.wantOK)
			}
			for i, p := range before {
				if p.status != tc.wantBefore[i] || p.orderID != tc.orders[i] {
					t.Errorf("message %d saw %s %q, want %s %q", i, p.orderID, p.status, tc.orders[i], tc.wantBefore[i])
				}
			}
		})
	}
	if ps["new"].status != payNew {
		t.Errorf("planAuthorize changed its input: %+v", ps["new"])
	}
}

func TestDecideCapture(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		p          payment
		want       captureAction
		wantStatus string
	}{
		{"authorized: capture", payment{status: payAuthorized}, captureCall, payCaptured},
		{"captured before", payment{status: payCaptured}, captureIgnore, payCaptured},
		{"declined", payment{status: "declined"}, captureIgnore, "declined"},
		{"voided before confirmation", payment{status: payVoided, orderCancelled: true}, captureIgnore, payVoided},
		{"new (no answer recorded)", payment{status: payNew}, captureIgnore, payNew},
		{"cancelled before its capture", payment{status: payAuthorized, orderCancelled: true}, captureThenRefund, payRefunded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, after := decideCapture(tc.p)
			if got != tc.want || after.status != tc.wantStatus {
				t.Errorf("decideCapture(%+v) = %d, status %q; want %d, %q", tc.p, got, after.status, tc.want, tc.wantStatus)
			}
		})
	}
}

func TestPlanCapture(t *testing.T) {
	t.Parallel()
	ps := map[string]payment{
		"auth":     {orderID: "auth", status: payAuthorized},
		"auth2":    {orderID: "auth2", status: payAuthorized},
		"declined": {orderID: "declined", status: "declined"},
		"refund":   {orderID: "refund", status: payAuthorized, orderCancelled: true},
	}
	for _, tc := range []struct {
		name       string
		orders     []string
		want       []captureAction
		wantBefore []string
		wantOK     bool
	}{
		{"capture and ignore", []string{"auth", "declined", "auth2"},
			[]captureAction{captureCall, captureIgnore, captureCall}, []string{payAuthorized, "declined", payAuthorized}, true},
		{"a duplicate sees the capture", []string{"auth", "auth", "auth2", "auth"},
			[]captureAction{captureCall, captureIgnore, captureCall, captureIgnore}, []string{payAuthorized, payCaptured, payAuthorized, payCaptured}, true},
		{"capture-then-refund is left to Handle", []string{"auth", "refund"}, nil, nil, false},
		{"a missing row is left to Handle", []string{"absent"}, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts, before, ok := planCapture(ps, tc.orders)
			if ok != tc.wantOK || !slices.Equal(acts, tc.want) {
				t.Fatalf("planCapture(%v) = %v, %v; want %v, %v", tc.orders, acts, ok, tc.want, tc.wantOK)
			}
			for i, p := range before {
				if p.status != tc.wantBefore[i] {
					t.Errorf("message %d saw %q, want %q", i, p.status, tc.wantBefore[i])
				}
			}
		})
	}
}

func TestConcurrentlyBoundsAndWaitsForEveryCall(t *testing.T) {
	t.Parallel()
	const n, limit = 40, 8
	var inFlight, peak atomic.Int64
	var mu sync.Mutex
	done := map[int]bool{}
	err := concurrently(n, limit, func(i int) error {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		mu.Lock()
		done[i] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != n {
		t.Errorf("%d of %d calls ran", len(done), n)
	}
	if p := peak.Load(); p > limit || p < 2 {
		t.Errorf("peak %d calls in flight, want 2..%d", p, limit)
	}
	if inFlight.Load() != 0 {
		t.Errorf("returned with %d calls in flight", inFlight.Load())
	}
}

func TestConcurrentlyStopsStartingCallsAfterAFailure(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	var started atomic.Int64
	var running atomic.Int64
	err := concurrently(100, 2, func(i int) error {
		started.Add(1)
		running.Add(1)
		defer running.Add(-1)
		if i == 0 {
			return fmt.Errorf("call %d: %w", i, errBoom)
		}
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the failed call's", err)
	}
	if running.Load() != 0 {
		t.Errorf("returned with %d calls running", running.Load())
	}
	if s := started.Load(); s >= 100 {
		t.Errorf("%d calls started after the first failed, want the rest skipped", s)
	}
	if err := concurrently(0, 8, func(int) error { return errBoom }); err != nil {
		t.Errorf("no calls: err = %v", err)
	}
}
