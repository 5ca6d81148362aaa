package payments

import (
	"slices"
	"testing"

	"github.com/tradewind/tradewind/events"
)

func TestDecideVoid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		p          payment
		prev       string
		want       voidAction
		wantStatus string
	}{
		{"no row: inserted, ignored", payment{status: payNoRow}, events.StatusPending, voidIgnoreNoRow, payNew},
		{"new: nothing held", payment{status: payNew}, events.StatusPending, voidNone, payNew},
		{"declined", payment{status: "declined"}, events.StatusPending, voidNone, "declined"},
		{"authorized, pending: void", payment{status: payAuthorized}, events.StatusPending, voidCall, payVoided},
		{"authorized, confirmed: left to capture_payment", payment{status: payAuthorized}, events.StatusConfirmed, voidIgnoreConfirmed, payAuthorized},
		{"captured: refund_payment's case", payment{status: payCaptured}, events.StatusConfirmed, voidNone, payCaptured},
		{"voided before", payment{status: payVoided, orderCancelled: true}, events.StatusPending, voidNone, payVoided},
		{"refunded before", payment{status: payRefunded, orderCancelled: true}, events.StatusConfirmed, voidNone, payRefunded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, after := decideVoid(tc.p, tc.prev)
			if got != tc.want || after.status != tc.wantStatus || !after.orderCancelled {
				t.Errorf("decideVoid(%+v, %q) = %d, %+v; want %d, status %q, cancelled", tc.p, tc.prev, got, after, tc.want, tc.wantStatus)
			}
		})
	}
}

func TestDecideRefund(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, wantStatus string
		want               refundAction
	}{
		{payNoRow, payNoRow, refundNone},
		{payNew, payNew, refundNone},
		{payAuthorized, payAuthorized, refundNone},
		{"declined", "declined", refundNone},
		{payVoided, payVoided, refundNone},
		{payRefunded, payRefunded, refundNone},
		{payCaptured, payRefunded, refundCall},
	} {
		got, after := decideRefund(payment{status: tc.status})
		if got != tc.want || after.status != tc.wantStatus {
			t.Errorf("decideRefund(%q) = %d, %q; want %d, %q", tc.status, got, after.status, tc.want, tc.wantStatus)
		}
	}
}

func TestPlanVoid(t *testing.T) {
	t.Parallel()
	ps := map[string]payment{
		"none":     {orderID: "none", status: payNoRow},
		"auth":     {orderID: "auth", status: payAuthorized},
		"auth2":    {orderID: "auth2", status: payAuthorized},
		"captured": {orderID: "captured", status: payCaptured},
	}
	for _, tc := range []struct {
		name       string
		orders     []string
		prev       []string
		want       []voidAction
		wantBefore []string
		wantOK     bool
	}{
		{"one of each", []string{"none", "auth", "captured", "auth2"},
			[]string{events.StatusPending, events.StatusPending, events.StatusConfirmed, events.StatusConfirmed},
			[]voidAction{voidIgnoreNoRow, voidCall, voidNone, voidIgnoreConfirmed},
			[]string{payNoRow, payAuthorized, payCaptured, payAuthorized}, true},
		{"a duplicate sees the first's effects", []string{"none", "auth", "none", "auth"},
			[]string{events.StatusPending, events.StatusPending, events.StatusCancelled, events.StatusCancelled},
			[]voidAction{voidIgnoreNoRow, voidCall, voidNone, voidNone},
			[]string{payNoRow, payAuthorized, payNew, payVoided}, true},
		{"the previous status is the message's own", []string{"auth", "auth"},
			[]string{events.StatusConfirmed, events.StatusPending},
			[]voidAction{voidIgnoreConfirmed, voidCall},
			[]string{payAuthorized, payAuthorized}, true},
		{"an order not in ps", []string{"auth", "unknown"}, []string{events.StatusPending, events.StatusPending}, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts, before, ok := planVoid(ps, tc.orders, tc.prev)
			if ok != tc.wantOK || !slices.Equal(acts, tc.want) {
				t.Fatalf("planVoid = %v, %v; want %v, %v", acts, ok, tc.want, tc.wantOK)
			}
			var got []string
			for _, p := range before {
				got = append(got, p.status)
			}
			if !slices.Equal(got, tc.wantBefore) {
				t.Errorf("statuses seen %q, want %q", got, tc.wantBefore)
			}
		})
	}
	if ps["auth"].status != payAuthorized || ps["none"].status != payNoRow {
		t.Error("planVoid changed its input")
	}
}

func TestPlanRefund(t *testing.T) {
	t.Parallel()
	ps := map[string]payment{
		"captured":  {orderID: "captured", status: payCaptured},
		"captured2": {orderID: "captured2", status: payCaptured},
		"voided":    {orderID: "voided", status: payVoided},
		"none":      {orderID: "none", status: payNoRow},
	}
	acts, before, ok := planRefund(ps, []string{"captured", "voided", "captured", "none", "captured2"})
	if want := []refundAction{refundCall, refundNone, refundNone, refundNone, refundCall}; !ok || !slices.Equal(acts, want) {
		t.Fatalf("planRefund = %v, %v; want %v", acts, ok, want)
	}
	if before[2].status != payRefunded {
		t.Errorf("the duplicate saw %q, want refunded", before[2].status)
	}
}
