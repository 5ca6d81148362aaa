package auth

import "time"

// SetThrottleClock replaces the throttle's clock.
func SetThrottleClock(t *Throttle, now func() time.Time) { t.now = now }
