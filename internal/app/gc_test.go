package app

import (
	"runtime/debug"
	"testing"
)

func TestTuneGCRaisesTheHeapTargetOnlyForHotPathRoles(t *testing.T) {
	t.Setenv("GOGC", "")
	for _, tc := range []struct {
		roles []string
		want  int
	}{
		{[]string{"ws"}, 100},
		{[]string{"ws", "orders"}, GCPercent},
		{[]string{"api"}, GCPercent},
		{[]string{"api", "ws", "orders", "inventory", "payments", "notifier", "projections", "relay"}, GCPercent},
	} {
		debug.SetGCPercent(100)
		TuneGC(tc.roles)
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("roles %v: GOGC %d, want %d", tc.roles, got, tc.want)
		}
	}
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	TuneGC([]string{"orders"})
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC set in the environment: %d, want it kept (150)", got)
	}
}
