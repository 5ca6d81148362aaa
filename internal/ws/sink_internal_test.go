package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// recordingConn records the writes that reach the socket: the sink's
// promise is about how many there are and what they hold.
type recordingConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// A round's frames, and a control frame another goroutine writes during
// it, leave in one write and in order; outside a round writes pass
// through; a round that outgrows sinkFlushAt streams instead of piling
// up.
func TestSinkWritesARoundOnceAndInOrder(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	rc := &recordingConn{Conn: a}
	s := &sink{conn: rc}

	mustWrite := func(p string) {
		t.Helper()
		if n, err := s.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	mustWrite("pass")
	s.hold()
	mustWrite("one,")
	mustWrite("pong,")
	mustWrite("two")
	if len(rc.writes) != 1 {
		t.Fatalf("%d writes while holding, want only the one before", len(rc.writes))
	}
	if err := s.release(); err != nil {
		t.Fatal(err)
	}
	if err := s.release(); err != nil { // a second release writes nothing
		t.Fatal(err)
	}
	if got := []string{string(rc.writes[0]), string(rc.writes[1])}; len(rc.writes) != 2 || got[1] != "one,pong,two" {
		t.Fatalf("writes %q, want [pass one,pong,two]", rc.writes)
	}

	rc.writes = nil
	s.hold()
	big := strings.Repeat("x", sinkFlushAt/2+1)
	mustWrite(big)
	mustWrite(big) // would exceed sinkFlushAt: the first goes out now
	if len(rc.writes) != 1 || len(rc.writes[0]) != len(big) {
		t.Fatalf("after outgrowing the limit: %d writes, want the first half written", len(rc.writes))
	}
	if err := s.release(); err != nil {
		t.Fatal(err)
	}
	if len(rc.writes) != 2 || len(rc.writes[1]) != len(big) {
		t.Fatalf("%d writes, want 2 of %d bytes", len(rc.writes), len(big))
	}
}

// Frames the sink frames itself are read as coder/websocket frames them:
// each length form of RFC 6455's header (7-bit, 16-bit, 64-bit), in one
// held round, then a close frame coder/websocket writes, after which the
// sink refuses frames.
func TestSinkTextFramesReadAsWebSocketMessages(t *testing.T) {
	payloads := [][]byte{[]byte("short"), bytes.Repeat([]byte("m"), 300), bytes.Repeat([]byte("l"), 70000)}
	accepted := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &slimWriter{ResponseWriter: w}
		c, err := websocket.Accept(sw, r, nil)
		if err != nil {
			accepted <- err
			return
		}
		sw.sink.hold()
		for _, p := range payloads {
			if err := sw.sink.text(p); err != nil {
				accepted <- err
				return
			}
		}
		if err := sw.sink.release(); err != nil {
			accepted <- err
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "done")
		sw.sink.hold()
		err = sw.sink.text([]byte("after close"))
		_ = sw.sink.release()
		if !errors.Is(err, net.ErrClosed) {
			accepted <- fmt.Errorf("text after close: %v, want net.ErrClosed", err)
			return
		}
		accepted <- nil
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	defer c.CloseNow()
	for i, want := range payloads {
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.MessageText || !bytes.Equal(got, want) {
			t.Fatalf("message %d: %v of %d bytes, want text of %d", i, typ, len(got), len(want))
		}
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the messages: %v, want the normal closure", err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}
