package main

import (
	"os"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/testenv"
)

// TestMain runs the benchmark's child modes when the test binary is
// started as one (benchTradewind starts its NATS, server and publisher
// from os.Executable), and the tests otherwise.
func TestMain(m *testing.M) {
	if child(os.Args[1:]) {
		return
	}
	testenv.Main(m)
}

// TestTradewindGetsEveryPublication runs the Tradewind side of the
// benchmark small: every personal and shared publication reaches every
// subscriber. A publication the server refuses (the shared channel's
// once lacked the order the ops feed requires, so the benchmark measured
// personal messages only) fails it.
func TestTradewindGetsEveryPublication(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS, the ws server and a publisher as processes")
	}
	const clients = 20
	o := options{
		clients: []int{clients}, personalRate: 100, sharedRate: 20, duration: time.Second,
		database: func() (string, func(), error) { return testenv.FreshDatabaseURL(t), func() {}, nil },
	}
	rep, err := benchTradewind(t.TempDir(), o, clients)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.fixed
	if r == nil {
		t.Fatal("no fixed-rate result")
	}
	// At least the shared publications' share: 20/s to each of 20
	// clients is 4 times the personal 100/s.
	if r.expected < 300 || r.delivered != r.expected || r.lost != 0 {
		t.Fatalf("delivered %d of %d (lost connections %d); want all of at least 300", r.delivered, r.expected, r.lost)
	}
}
