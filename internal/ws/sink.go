package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// An idle connection should cost little memory (docs/websocket.md). The
// buffers net/http hands over with a hijacked connection are 4 KiB for
// reading and 4 KiB for writing, held for the connection's life: two
// fifths of an idle connection. slimWriter gives coder/websocket small
// ones instead, and a sink under the write buffer that holds a
// round's frames in a pooled buffer, so the round goes out in one write.
const (
	// readBuffer is coder/websocket's read buffer over the feed, which
	// holds what the client sent: the smallest bufio allows (a payload
	// longer than it is read straight into the message).
	readBuffer = 16
	// writeBuffer holds one control frame (at most 125 bytes of payload
	// and a 2-byte header): a pong or a close written outside a round
	// goes out in one write.
	writeBuffer = 128
	// sinkFlushAt: a held round that grows past this is written out
	// at once, so a long backfill streams rather than piling up.
	sinkFlushAt = 32 << 10
)

// slimWriter is the ResponseWriter websocket.Accept hijacks through.
type slimWriter struct {
	http.ResponseWriter
	mem  *connMem
	sink *sink // set by Hijack
	feed *feed // set by Hijack; its pump is running
}

// connMem is one allocation for what a connection keeps for its life:
// its state, its feed and its sink. As separate objects they shared size
// classes with the many short-lived objects of a handshake (the request,
// the token's parsing), whose spans a burst of connections leaves half
// empty; one larger object is in a class of its own.
type connMem struct {
	c  conn
	f  feed
	s  sink
	br bufio.Reader // coder/websocket's buffers' headers (their bytes are apart)
	bw bufio.Writer
}

// Hijack hijacks the connection and replaces net/http's buffers: the
// connection is read by a feed's pump, starting with the bytes net/http's
// reader already holds (a client may send its first frame right after the
// upgrade request), and written through a sink (net/http's writer is
// empty: the 101 response is flushed before a hijack).
func (w *slimWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var ahead []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		ahead = bytes.Clone(b)
	}
	w.mem = &connMem{}
	w.mem.s.conn = nc
	w.mem.f.init(nc)
	w.sink, w.feed = &w.mem.s, &w.mem.f
	go w.feed.pump(ahead)
	w.mem.br = *bufio.NewReaderSize(w.feed, readBuffer)
	w.mem.bw = *bufio.NewWriterSize(w.sink, writeBuffer)
	return w.feed, bufio.NewReadWriter(&w.mem.br, &w.mem.bw), nil
}

// sinkBufs are held rounds' buffers: a connection has one only while its
// round holds the sink.
var sinkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 16<<10)
	return &b
}}

// sink is the writer under coder/websocket's write buffer. Between hold
// and release, what is written (the round's frames, and a pong or close
// another goroutine writes meanwhile) is appended to a pooled buffer;
// release writes it in one system call. Outside a round every write goes
// out at once. Bytes leave in the order they were written.
//
// A round's notification frames are framed here (text), not by
// coder/websocket: its Write costs a context-aware lock, a message
// writer reset and a buffered copy per frame, about a tenth of the
// server's CPU at 1,000 clients (bench-ws profile), for a header of at
// most 10 bytes. Frames cannot interleave: coder/websocket writes only
// control frames here (its data frames are never used after the
// handshake), each at most 127 bytes, so each arrives whole, in one
// Write at its flush, through the 128-byte buffer (writeBuffer).
type sink struct {
	mu     sync.Mutex
	conn   net.Conn
	held   *[]byte // nil when not holding
	closed bool    // a close frame went through: no frame may follow
}

// opClose is the first byte of a server's (unmasked, final) close frame.
const opClose = 0x88

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) > 0 && p[0] == opClose {
		s.closed = true
	}
	if s.held == nil {
		return s.conn.Write(p)
	}
	if len(*s.held)+len(p) > sinkFlushAt {
		if err := s.writeHeldLocked(); err != nil {
			return 0, err
		}
	}
	*s.held = append(*s.held, p...)
	return len(p), nil
}

// text appends payload as one final, unmasked text frame (RFC 6455
// section 5.2) to the held round; the caller holds the sink.
func (s *sink) text(payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if s.held == nil {
		return fmt.Errorf("ws: text frame outside a round")
	}
	var h [10]byte
	h[0] = 0x81 // FIN, text
	n := 2
	switch l := len(payload); {
	case l <= 125:
		h[1] = byte(l)
	case l <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(l))
		n = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(l))
		n = 10
	}
	if len(*s.held)+n+len(payload) > sinkFlushAt {
		if err := s.writeHeldLocked(); err != nil {
			return err
		}
	}
	*s.held = append(append(*s.held, h[:n]...), payload...)
	return nil
}

// hold starts a round.
func (s *sink) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = sinkBufs.Get().(*[]byte)
	}
}

// release ends a round: writes what it holds, then writes pass through.
func (s *sink) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return nil
	}
	err := s.writeHeldLocked()
	if cap(*s.held) <= 4*sinkFlushAt { // a huge buffer is not kept
		sinkBufs.Put(s.held)
	}
	s.held = nil
	return err
}

func (s *sink) writeHeldLocked() error {
	b := *s.held
	*s.held = b[:0]
	if len(b) == 0 {
		return nil
	}
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
