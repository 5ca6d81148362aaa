package ws

import (
	"sync"

	"github.com/tradewind/tradewind/internal/metrics"
)

// MaxBatchBytes bounds a batch frame: notifications are added to a batch
// while it stays within this size (a single notification larger than it
// is sent alone as a notification frame). It is below the 32 KiB default
// read limit of common WebSocket client libraries.
const MaxBatchBytes = 16 << 10

const (
	batchPrefix = `{"type":"batch","messages":[`
	batchSuffix = `]}`
)

// batchBufs holds batch buffers between rounds: a connection owns
// one only while it writes, so idle connections hold none.
var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, MaxBatchBytes)
	return &b
}}

// out writes the frames of one round of a connection, in order.
//
// For a client that asked for batches, consecutive notifications are
// coalesced into one {"type":"batch","messages":[…]} frame (one write, so
// one syscall, for many notifications); any other frame first flushes the
// pending batch, so the order of frames is the queue's order. A batch of
// one is sent as the notification frame itself, so the shared, encoded-once
// bytes are written without a copy. Without batches every notification is
// written as it comes.
//
// out is used by the connection's writer goroutine only.
type out struct {
	c         *conn
	first     []byte  // the pending notification while there is exactly one
	buf       *[]byte // the batch under construction (pending > 1), pooled
	pending   int     // notifications not yet written
	delivered int     // notifications written this round (for the metric)
}

// notification queues one notification frame for writing.
func (o *out) notification(frame []byte) error {
	if !o.c.batch {
		o.delivered++
		return o.c.send(frame)
	}
	if o.pending > 0 && o.size()+1+len(frame)+len(batchSuffix) > MaxBatchBytes {
		if err := o.flush(); err != nil {
			return err
		}
	}
	switch o.pending {
	case 0:
		o.first = frame
	case 1:
		o.buf = batchBufs.Get().(*[]byte)
		b := append((*o.buf)[:0], batchPrefix...)
		b = append(b, o.first...)
		b = append(b, ',')
		*o.buf = append(b, frame...)
		o.first = nil
	default:
		b := append(*o.buf, ',')
		*o.buf = append(b, frame...)
	}
	o.pending++
	return nil
}

// control writes a frame that is not a notification, after the pending
// notifications.
func (o *out) control(frame []byte) error {
	if err := o.flush(); err != nil {
		return err
	}
	return o.c.send(frame)
}

// raw writes a whole frame (a ping or pong) as it is, after the pending
// notifications; the round holds the sink, so it joins the round's write.
func (o *out) raw(frame []byte) error {
	if err := o.flush(); err != nil {
		return err
	}
	_, err := o.c.sink.Write(frame)
	return err
}

// size is the length of the pending batch frame without its suffix.
func (o *out) size() int {
	if o.buf != nil {
		return len(*o.buf)
	}
	return len(batchPrefix) + len(o.first)
}

// flush writes the pending notifications, if any.
func (o *out) flush() error {
	var err error
	switch o.pending {
	case 0:
		return nil
	case 1:
		err = o.c.send(o.first)
		o.first = nil
	default:
		*o.buf = append(*o.buf, batchSuffix...)
		err = o.c.send(*o.buf)
		o.release()
	}
	o.delivered += o.pending
	o.pending = 0
	return err
}

// done flushes and records the round's deliveries; out may be reused.
func (o *out) done() error {
	err := o.flush()
	o.release()
	o.first, o.pending = nil, 0
	if o.delivered > 0 {
		metrics.WSDelivered.Add(float64(o.delivered))
		o.delivered = 0
	}
	return err
}

func (o *out) release() {
	if o.buf != nil {
		if cap(*o.buf) <= 4*MaxBatchBytes { // a huge buffer is not kept
			batchBufs.Put(o.buf)
		}
		o.buf = nil
	}
}
