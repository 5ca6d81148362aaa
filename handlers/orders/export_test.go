package orders

import "time"

// SetPlaceOrderClock fixes the clock of h, for tests that compare runs.
func SetPlaceOrderClock(h *PlaceOrder, now func() time.Time) { h.now = now }
