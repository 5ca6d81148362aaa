package ws_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/ws"
)

func TestBatchFramesOnlyForClientsThatAskAndEveryNotificationOnceInOrder(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{})
	u := user(t, "batch")
	tok, _ := e.token(u, auth.RoleCustomer)
	var n int64 = 60 // a backfill of n notifications is more than one batch frame
	for range n {
		e.notify(u, "")
	}
	cases := []struct {
		name        string
		connect     func(t *testing.T, url, token string) *client
		wantBatches bool
	}{
		{"a client that asked for batches gets the backfill in batch frames", connectBatch, true},
		{"a client that did not ask gets one frame per notification", connect, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.connect(t, s.url, tok)
			c.subscribe("user", 0)
			if f := c.next(); f.Type != "subscribed" {
				t.Fatalf("first frame %s, want subscribed", f.raw)
			}
			wantRun(t, c.notifications("user", int(n)), 1, n)
			switch {
			case tc.wantBatches && c.batches < 2:
				t.Fatalf("%d batch frames for a backfill of %d notifications, want at least 2", c.batches, n)
			case !tc.wantBatches && c.batches > 0:
				t.Fatalf("%d batch frames sent to a client that did not ask for them", c.batches)
			}
			for _, size := range c.sizes {
				if size > ws.MaxBatchBytes {
					t.Fatalf("batch frame of %d bytes, limit %d", size, ws.MaxBatchBytes)
				}
			}
			// Live notifications follow, after the backfill, with no gap.
			n++
			e.notify(u, "")
			wantRun(t, c.notifications("user", 1), n, n)
		})
	}
}

func TestBatchClientsSeeNoGapAndNoDuplicateUnderConcurrentPublishing(t *testing.T) {
	e := newEnv(t)
	s := e.server(ws.Config{BackfillPage: 7, WriteConcurrency: 1}) // one writer at a time: notifications pile up
	u := user(t, "batchseam")
	tok, _ := e.token(u, auth.RoleCustomer)
	for range 10 {
		e.notify(u, "")
	}
	clients := make([]*client, 3)
	for i := range clients {
		clients[i] = connectBatch(t, s.url, tok)
		clients[i].subscribe("user", int64(i*4))
		if f := clients[i].next(); f.Type != "subscribed" {
			t.Fatalf("got %s", f.raw)
		}
	}
	const writers, each = 4, 10
	done := make(chan struct{})
	for range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				e.notify(u, "")
			}
		}()
	}
	for range writers {
		<-done
	}
	total := int64(10 + writers*each)
	for i, c := range clients {
		since := int64(i * 4)
		wantRun(t, c.notifications("user", int(total-since)), since+1, total)
	}
}

func TestConnectionWhoseWriteIsBlockedIsDroppedAndResumesWithoutLoss(t *testing.T) {
	e := newEnv(t)
	// A queue that never overflows: only the write timeout can end it.
	s := e.server(ws.Config{QueueSize: 100000, WriteTimeout: time.Second}, smallBuffers)
	u := user(t, "stuck")
	tok, _ := e.token(u, auth.RoleCustomer)
	c, _, err := dial(t, s.url+"?access_token="+tok, smallReadBufferDialer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	stuck := &client{t: t, ws: c}
	stuck.next() // authenticated
	stuck.subscribe("user", 0)
	stuck.next() // subscribed
	// The client stops reading; the socket buffers fill and a write blocks.
	const n = 300
	for range n {
		e.notify(u, "")
	}
	time.Sleep(3 * time.Second) // WriteTimeout, checked every second
	var last int64
	var code websocket.StatusCode
	for {
		f, err := stuck.read(15 * time.Second)
		if err != nil {
			code = websocket.CloseStatus(err)
			break
		}
		if f.Type == "notification" {
			if f.Seq != last+1 {
				t.Fatalf("before the drop: seq %d after %d", f.Seq, last)
			}
			last = f.Seq
		}
	}
	if code != -1 {
		t.Fatalf("connection ended with close code %d, want a drop without close frame", code)
	}
	if last >= n {
		t.Fatalf("every notification was delivered; the test did not block a write")
	}
	resumed := connect(t, s.url, tok)
	resumed.subscribe("user", last)
	wantRun(t, resumed.notifications("user", int(n-last)), last+1, n)
}
