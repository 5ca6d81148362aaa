package ws

import (
	"encoding/binary"
	"net"
	"sync"
)

// feed is the read side of a connection, under coder/websocket.
//
// coder/websocket reads with a goroutine blocked in its Conn.Read, and
// that call chain (its frame reader, bufio, net.Conn) needs about 1.7 KB
// of stack besides the runtime's 928-byte guard: every idle connection
// held a 4 KiB stack for it, the largest part of its memory. Here one
// goroutine per connection, the pump, is the socket's only reader: it
// reads into a small array, answers pings and records pongs itself (the
// server's heartbeat sends the pings, see Server.heartbeat), and hands
// every other frame's bytes, in socket order, to coder/websocket through
// Read. The goroutine that calls coder/websocket's Read (the owner's readMessages) is started
// only when a whole message is waiting, and ends when none is, so an idle
// connection holds the pump alone, parked in net.Conn.Read on the 2 KiB
// stack a goroutine starts with.
//
// Hand-written because the library has no way to wait for a message
// without a goroutine inside its read path. The pump parses frame headers
// only (RFC 6455 section 5.2), to find where messages end; what it passes
// on, coder/websocket checks as before (masking, reserved bits, opcodes,
// the read limit). A control frame that is not well formed is passed on,
// so that coder/websocket refuses it as it always did.
//
// Invariants: bytes reach coder/websocket in the order they arrived,
// minus the pings and pongs the pump answered or recorded; msgs counts
// the messages passed on (final data frames, close frames, control frames
// coder/websocket refuses), each of which ends one coder/websocket Read,
// so readMessages never waits for a message the pump has not seen. Hazards: a
// message split over several frames, or a ping that reaches
// coder/websocket (before arm), makes readMessages wait inside the library for the
// rest, with the deep stack, until it arrives; pending bytes are bounded
// by feedMax, beyond which the pump stops reading until they are read.
type feed struct {
	// The hijacked connection: coder/websocket reads it through Read
	// (the feed is what Hijack returns), and writes and closes it as
	// before.
	net.Conn

	mu   sync.Mutex
	cond sync.Cond // buf grew, buf was read, or the pump ended
	buf  []byte    // bytes for coder/websocket not yet read; nil when drained
	err  error     // the socket's read error: Read returns it once buf is drained
	msgs int       // messages passed on and not yet taken by readMessages (nor by the handler's auth read)

	o         owner // set by arm: before it, no one reads messages but the handler's auth read
	halted    bool  // reading ended for good: only a close handshake reads now
	running   bool  // o.readMessages is running
	pumped    bool  // the pump has ended
	endCalled bool  // o.ended was called
	stopped   bool  // no one will read any more: the pump drops what would wait for room

	// The frame being parsed; only the pump touches these.
	in      [32]byte // the pump's read buffer: client frames are few and small (here: an array passed to Read escapes anyway)
	hdr     [14]byte
	hn      int   // header bytes collected
	need    int64 // payload bytes left in the current frame
	kind    frameKind
	inFrame bool   // the header is parsed and the payload is being read
	final   bool   // the current frame, passed on, ends a coder/websocket Read
	ping    []byte // the current ping's payload, still masked
}

// owner is the connection a feed hands its messages to (conn): one
// interface value rather than a closure per callback, which each cost
// every connection an allocation.
type owner interface {
	readMessages()      // reads the waiting messages, calling took after each
	answer(pong []byte) // queues the answer to a ping
	ponged()            // records a pong
	ended()             // the pump and readMessages have both ended (called once)
}

type frameKind uint8

const (
	framePass frameKind = iota // handed to coder/websocket
	framePing                  // answered here
	framePong                  // recorded here
)

// feedMax bounds the bytes waiting for coder/websocket: a whole client
// frame fits (MaxFrameBytes is 4096 by default); beyond it readMessages is started
// even before a message is complete, and coder/websocket's read limit
// refuses a frame that is too long as it streams in.
const feedMax = 8 << 10

func (f *feed) init(nc net.Conn) {
	f.Conn = nc
	f.cond.L = &f.mu
}

// pump reads the socket until it fails or is closed, starting with the
// bytes net/http had read ahead.
func (f *feed) pump(ahead []byte) {
	f.scan(ahead)
	for {
		n, err := f.Conn.Read(f.in[:])
		f.scan(f.in[:n])
		if err != nil {
			f.fail(err)
			return
		}
	}
}

// Read is what coder/websocket reads the connection through: the bytes
// the pump passed on.
func (f *feed) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.buf) == 0 && f.err == nil {
		f.cond.Wait()
	}
	if len(f.buf) == 0 {
		return 0, f.err
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	if len(f.buf) == 0 {
		f.buf = nil // an idle connection keeps no buffer
	}
	f.cond.Broadcast() // room for the pump
	return n, nil
}

// scan parses p's frames: pings and pongs are handled, everything else is
// appended to buf; a message that completes may start readMessages.
func (f *feed) scan(p []byte) {
	if len(p) == 0 {
		return
	}
	var pongs int
	var answers [][]byte
	f.mu.Lock()
	for len(p) > 0 {
		if !f.inFrame {
			for f.hn < headerLen(f.hdr[:f.hn]) && len(p) > 0 {
				f.hdr[f.hn] = p[0]
				f.hn++
				p = p[1:]
			}
			if f.hn < headerLen(f.hdr[:f.hn]) {
				break
			}
			f.begin()
		} else {
			k := int(min(f.need, int64(len(p))))
			switch f.kind {
			case framePass:
				f.buf = append(f.buf, p[:k]...)
			case framePing:
				f.ping = append(f.ping, p[:k]...)
			}
			f.need -= int64(k)
			p = p[k:]
		}
		if f.inFrame && f.need == 0 {
			f.inFrame = false
			switch f.kind {
			case framePing:
				answers = append(answers, pongFrame(f.ping, f.hdr[f.hn-4:f.hn]))
				f.ping = nil
			case framePong:
				pongs++
			case framePass:
				if f.final {
					f.msgs++
				}
			}
			f.hn = 0
		}
	}
	for len(f.buf) >= feedMax && !f.stopped {
		if f.startLocked() {
			go f.o.readMessages()
		}
		f.cond.Wait()
	}
	if f.stopped && len(f.buf) > feedMax {
		f.buf = f.buf[:feedMax] // no one reads: the rest is dropped
	}
	start := f.startLocked()
	f.cond.Broadcast()
	o := f.o
	f.mu.Unlock()
	for _, a := range answers {
		o.answer(a)
	}
	if pongs > 0 && o != nil {
		o.ponged()
	}
	if start {
		go o.readMessages()
	}
}

// begin decides what the frame whose header is in hdr is.
func (f *feed) begin() {
	h := f.hdr[:f.hn]
	fin, rsv, op, masked := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f, h[1]&0x80 != 0
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = int64(binary.BigEndian.Uint64(h[2:])) // negative when the top bit is set: coder/websocket refuses it
	}
	control := op >= 0x8
	wellFormed := fin && rsv == 0 && masked && n >= 0 && n <= 125
	f.inFrame, f.need, f.kind, f.final = true, max(n, 0), framePass, false
	switch {
	case op == 0xA && wellFormed:
		f.kind = framePong
	case op == 0x9 && wellFormed && f.o != nil:
		f.kind = framePing
	case op == 0x9 && wellFormed:
		// before arm: coder/websocket answers it inside the auth read,
		// which it does not end
	case !control && fin, control, n < 0:
		f.final = true // ends a coder/websocket Read: a message, a close, or an error
	}
	if f.kind == framePass {
		f.buf = append(f.buf, h...)
	}
	if n < 0 {
		f.need = 0 // nothing more can be parsed; coder/websocket closes the connection
	}
}

// headerLen is the length of the frame header h begins (RFC 6455 5.2).
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// pongFrame is the answer to a ping whose payload is masked with key.
func pongFrame(masked, key []byte) []byte {
	out := make([]byte, 2+len(masked))
	out[0], out[1] = 0x8A, byte(len(masked)) // FIN, pong; a ping's payload is at most 125 bytes
	for i, b := range masked {
		out[2+i] = b ^ key[i%4]
	}
	return out
}

// pingFrame is the server's ping: unmasked, no payload.
var pingFrame = []byte{0x89, 0x00}

// startLocked reports whether readMessages must be started now (and marks it
// running).
func (f *feed) startLocked() bool {
	if f.running || f.o == nil || f.halted || (f.msgs == 0 && len(f.buf) < feedMax) {
		return false
	}
	f.running = true
	return true
}

// fail records the socket's read error: Read returns it once the bytes
// before it are read.
func (f *feed) fail(err error) {
	f.mu.Lock()
	f.err, f.pumped = err, true
	f.cond.Broadcast()
	end := f.endLocked()
	f.mu.Unlock()
	if end != nil {
		end.ended()
	}
}

// arm hands the connection over to o after authentication: consumed
// messages were read by the handler. It returns false when the pump has
// already ended (the caller then ends the connection itself).
func (f *feed) arm(consumed int, o owner) bool {
	f.mu.Lock()
	if f.pumped {
		f.mu.Unlock()
		return false
	}
	f.msgs -= consumed
	f.o = o
	start := f.startLocked()
	f.mu.Unlock()
	if start {
		go o.readMessages()
	}
	return true
}

// took is called by readMessages after each message it read: more
// reports whether it must read another (one is waiting). halt=true ends
// reading for good.
func (f *feed) took(halt bool) (more bool) {
	f.mu.Lock()
	if !halt {
		f.msgs--
		if !f.halted && (f.msgs > 0 || len(f.buf) >= feedMax) {
			f.mu.Unlock()
			return true
		}
	} else {
		f.halted, f.stopped = true, true // only a close handshake reads now
	}
	f.running = false
	f.cond.Broadcast()
	end := f.endLocked()
	f.mu.Unlock()
	if end != nil {
		end.ended()
	}
	return false
}

// stop says that no one will read the connection any more (the handler
// gave up on it): the pump no longer waits for room.
func (f *feed) stop() {
	f.mu.Lock()
	f.stopped = true
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *feed) endLocked() owner {
	if !f.pumped || f.running || f.o == nil || f.endCalled {
		return nil
	}
	f.endCalled = true
	return f.o
}
