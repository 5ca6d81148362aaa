package ws

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// clientFrame is a masked client frame (RFC 6455 5.2).
func clientFrame(b0 byte, payload []byte) []byte {
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	var h []byte
	switch l := len(payload); {
	case l <= 125:
		h = []byte{b0, 0x80 | byte(l)}
	case l <= 0xFFFF:
		h = []byte{b0, 0x80 | 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(l))
	default:
		h = []byte{b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(h[2:], uint64(l))
	}
	out := append(h, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// recordingOwner records what the feed hands its owner; it reads no
// messages (the parser test leaves them in the feed).
type recordingOwner struct {
	answers [][]byte
	pongs   int
}

func (r *recordingOwner) readMessages()      {}
func (r *recordingOwner) answer(pong []byte) { r.answers = append(r.answers, pong) }
func (r *recordingOwner) ponged()            { r.pongs++ }
func (r *recordingOwner) ended()             {}

// The pump's parser, fed a stream in pieces of every size: pings are
// answered with their payload and pongs recorded, and neither reaches
// coder/websocket; every other frame reaches it whole and in order, and
// msgs counts what ends a coder/websocket Read.
func TestFeedPassesMessagesAndAnswersPingsAcrossAnyReadBoundary(t *testing.T) {
	text := clientFrame(0x81, []byte(`{"type":"subscribe","channel":"user"}`))
	long := clientFrame(0x81, bytes.Repeat([]byte("x"), 300)) // 16-bit length
	first := clientFrame(0x01, []byte("frag-"))               // a message in two frames
	last := clientFrame(0x80, []byte("ment"))
	ping := clientFrame(0x89, []byte("are you there"))
	pong := clientFrame(0x8A, nil)
	closing := clientFrame(0x88, []byte{0x03, 0xE8})
	badPing := clientFrame(0x09, nil) // not final: coder/websocket must refuse it
	var stream []byte
	for _, f := range [][]byte{text, ping, long, pong, first, ping, last, badPing, closing} {
		stream = append(stream, f...)
	}
	wantPassed := bytes.Join([][]byte{text, long, first, last, badPing, closing}, nil)
	for _, size := range []int{1, 2, 3, 7, 64, len(stream)} {
		f := new(feed)
		f.init(nil)
		rec := &recordingOwner{}
		f.o = rec
		for p := stream; len(p) > 0; {
			n := min(size, len(p))
			f.scan(p[:n])
			p = p[n:]
		}
		if !bytes.Equal(f.buf, wantPassed) {
			t.Fatalf("pieces of %d: passed on\n%q\nwant\n%q", size, f.buf, wantPassed)
		}
		if f.msgs != 5 { // text, long, the fragmented message, the bad ping, close
			t.Errorf("pieces of %d: msgs = %d, want 5", size, f.msgs)
		}
		wantPong := append([]byte{0x8A, 13}, "are you there"...)
		if len(rec.answers) != 2 || !bytes.Equal(rec.answers[0], wantPong) || !bytes.Equal(rec.answers[1], wantPong) {
			t.Errorf("pieces of %d: answers %q, want two %q", size, rec.answers, wantPong)
		}
		if rec.pongs != 1 {
			t.Errorf("pieces of %d: %d pongs recorded, want 1", size, rec.pongs)
		}
	}
}

// Before arm, a ping is left to coder/websocket, which answers it inside
// the auth read without ending that read: it is passed on, uncounted.
func TestFeedLeavesPingsToTheLibraryBeforeArm(t *testing.T) {
	ping := clientFrame(0x89, []byte("hi"))
	auth := clientFrame(0x81, []byte(`{"type":"auth"}`))
	f := new(feed)
	f.init(nil)
	f.scan(append(append([]byte{}, ping...), auth...))
	if want := append(append([]byte{}, ping...), auth...); !bytes.Equal(f.buf, want) {
		t.Fatalf("passed on %q, want %q", f.buf, want)
	}
	if f.msgs != 1 {
		t.Fatalf("msgs = %d, want 1 (the auth frame)", f.msgs)
	}
}
