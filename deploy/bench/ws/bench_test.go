package main

import (
	"slices"
	"testing"
	"time"
)

// TestParseUTCAgreesWithTheTimePackage: the benchmark's digit-arithmetic
// time parser reads what time.Parse reads, and refuses what is not a UTC
// RFC 3339 time (a latency it misread would be a wrong p99).
func TestParseUTCAgreesWithTheTimePackage(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"2026-12-07T16:05:09Z",
		"2026-12-07T16:05:09.5Z",
		"2026-12-07T16:05:09.123456789Z",
		"1999-01-31T00:00:00.000001Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseUTC([]byte(s + `","data":{}`))
		if !ok || got != want.UnixNano() {
			t.Errorf("parseUTC(%q) = %d, %v; want %d", s, got, ok, want.UnixNano())
		}
	}
	for _, s := range []string{"", "2026-12-07", "2026-12-07 16:05:09Z", "2026-12-07T16:05:09+01:00", "2026-12-07T16:05:09.12"} {
		if _, ok := parseUTC([]byte(s)); ok {
			t.Errorf("parseUTC(%q) accepted a time that is not UTC RFC 3339", s)
		}
	}
}

// TestStampsFindsEveryNotificationOfABatchFrame: one stamp per
// notification in a frame, none for other messages.
func TestStampsFindsEveryNotificationOfABatchFrame(t *testing.T) {
	t.Parallel()
	frame := []byte(`[{"type":"notification","seq":1,"event":{"id":"a","time":"2026-12-07T16:05:09Z"}},` +
		`{"type":"ack","time":"2026-12-07T16:05:10Z"},` +
		`{"type":"notification","seq":2,"event":{"id":"b","time":"2026-12-07T16:05:11.25Z"}}]`)
	var got []int64
	n := (&tradewind{}).stamps(frame, func(ts int64) { got = append(got, ts) })
	want := []int64{
		time.Date(2026, 12, 7, 16, 5, 9, 0, time.UTC).UnixNano(),
		time.Date(2026, 12, 7, 16, 5, 11, 250_000_000, time.UTC).UnixNano(),
	}
	if n != 2 || !slices.Equal(got, want) {
		t.Errorf("stamps = %d %v, want 2 %v", n, got, want)
	}
}

// TestCapacityIsTheHighestPassingStep: a failed step above it does not
// count, the peak is the best delivered rate of any step.
func TestCapacityIsTheHighestPassingStep(t *testing.T) {
	t.Parallel()
	c := &capacity{steps: []step{
		{mult: 1, pass: true, sample: sample{rate: 100}},
		{mult: 4, pass: false, sample: sample{rate: 310}},
		{mult: 2, pass: true, sample: sample{rate: 200}},
		{mult: 3, pass: false, sample: sample{rate: 280}},
	}}
	best, ok := c.sustained()
	if !ok || best.mult != 2 {
		t.Errorf("sustained = %v %v, want the step at ×2", best.mult, ok)
	}
	if p := c.peak(); p != 310 {
		t.Errorf("peak = %v, want 310", p)
	}
	if _, ok := (&capacity{steps: []step{{mult: 1}}}).sustained(); ok {
		t.Error("a ramp whose every step failed has a sustained rate")
	}
}

// TestCountsParsesClientCounts: the -clients list.
func TestCountsParsesClientCounts(t *testing.T) {
	t.Parallel()
	got, err := counts("clients", " 1000, 10000,,")
	if err != nil || !slices.Equal(got, []int{1000, 10000}) {
		t.Errorf("counts = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "ten", "-5"} {
		if _, err := counts("clients", bad); err == nil {
			t.Errorf("counts(%q) accepted a bad count", bad)
		}
	}
}
