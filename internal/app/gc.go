package app

import (
	"os"
	"runtime/debug"
	"slices"
)

// GCPercent is serve's GOGC for a process that runs a role of the saga's
// hot path, unless the environment sets one: the live heap is small (tens
// of MB) and the hot path allocates per message, so a larger heap target
// spends less CPU on collection.
const GCPercent = 400

// lightRoles gain nothing from the larger heap target: the ws fan-out is
// judged by its memory per idle connection, which 400 raised by about
// 2 KiB (bench-ws, 1,000 clients: 15.2 KiB at 400, 13.0 at Go's default
// 100), while its delivery rate was no higher (capacity ratios of three
// runs each: 1.35-1.83x at 400, 1.35-2.48x at 100). A process that runs
// only these keeps Go's default. (The api role gains: docs/gateway.md.)
var lightRoles = []string{"ws"}

// TuneGC sets GOGC to GCPercent when roles include one outside lightRoles,
// unless the environment sets GOGC, which wins. serve calls it, and so do
// benchmarks that run one of serve's roles in a process of their own, so
// that they measure what serve runs.
func TuneGC(roles []string) {
	if os.Getenv("GOGC") != "" {
		return
	}
	if slices.ContainsFunc(roles, func(r string) bool { return !slices.Contains(lightRoles, r) }) {
		debug.SetGCPercent(GCPercent)
	}
}
