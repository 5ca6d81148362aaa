package orders

import (
	"testing"

	"github.com/tradewind/tradewind/events"
)

func TestOrderTotalRefusesLessThanOne(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		lines      []events.OrderLine
		wantTotal  int64
		wantReason string
	}{
		{"priced lines", []events.OrderLine{{SKU: "a", Quantity: 2, UnitPrice: 100000}, {SKU: "b", Quantity: 1, UnitPrice: 5}}, 200005, ""},
		{"one unit at 1", []events.OrderLine{{SKU: "a", Quantity: 1, UnitPrice: 1}}, 1, ""},
		{"a free line beside a priced one", []events.OrderLine{{SKU: "a", Quantity: 1, UnitPrice: 0}, {SKU: "b", Quantity: 1, UnitPrice: 3}}, 3, ""},
		{"every line free", []events.OrderLine{{SKU: "a", Quantity: 3, UnitPrice: 0}}, 0, events.RejectInvalidTotal},
		{"the schema's largest order", func() []events.OrderLine {
			ls := make([]events.OrderLine, 100)
			for i := range ls {
				ls[i] = events.OrderLine{SKU: "a", Quantity: 10000, UnitPrice: 100000000}
			}
			return ls
		}(), 100_000_000_000_000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, reason, detail := orderTotal(tc.lines)
			if total != tc.wantTotal || reason != tc.wantReason || (reason == "") != (detail == "") {
				t.Errorf("orderTotal = %d, %q, %q; want %d, %q (and a detail exactly with a reason)", total, reason, detail, tc.wantTotal, tc.wantReason)
			}
		})
	}
}
