package main

import "testing"

// TestCheckWaitsForInFlightOrdersByDefault: `load && check`, the README's
// last line, must not fail on a healthy system whose captures are still
// settling, so check waits by default (bounded), and --no-wait is the
// one-shot option.
func TestCheckWaitsForInFlightOrdersByDefault(t *testing.T) {
	check := newCheckCmd()
	wait := check.Flags().Lookup("wait")
	if wait == nil || wait.DefValue != DefaultCheckWait.String() || DefaultCheckWait <= 0 {
		t.Errorf("--wait default = %v, want %s (> 0)", wait, DefaultCheckWait)
	}
	if check.Flags().Lookup("no-wait") == nil {
		t.Error("no --no-wait flag")
	}
}
