package ws

import (
	"bytes"
	"net"
	"strings"
	"testing"
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
