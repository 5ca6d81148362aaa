package app

import (
	"os"
	"runtime/debug"
)

// GCPercent is serve's GOGC unless the environment sets one: the live
// heap is small (tens of MB) and the hot path allocates per message, so a
// larger heap target spends less CPU on collection.
const GCPercent = 400

// TuneGC sets GOGC to GCPercent unless the environment sets GOGC, which
// wins. serve calls it, and so do benchmarks that run one of serve's
// roles in a process of their own, so that they measure what serve runs.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
