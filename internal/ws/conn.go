package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tradewind/tradewind/internal/metrics"
)

// itemKind tells the writer what an item of the send queue is.
type itemKind uint8

const (
	itemNotification itemKind = iota // a live notification (shared frame bytes)
	itemFrame                        // a control frame for this connection only
	itemSubscribe                    // backfill a new subscription, then let it go live
	itemResync                       // backfill every subscription from its last seq
	itemControl                      // a ping or pong, the whole frame in frame
)

type item struct {
	kind  itemKind
	sub   *subscription
	note  *note // itemNotification: the message, rendered on first use
	key   uint8 // itemNotification: which of note's keys sub listens on
	frame []byte
}

// subscription is one channel of one connection. last and ready belong to
// the connection's writer goroutine.
type subscription struct {
	c       *conn
	ch      channel
	removed atomic.Bool
	at      int // its index in the hub's list of its key (under the hub's lock)

	last  int64 // highest seq written to the client
	ready bool  // backfill done: live items are written (before, they are in the inbox and the backfill reads them)
}

// conn is one client connection: its feed reads (readMessages runs only
// while a message waits), one writer at a time writes everything (in
// queue order), so writes never interleave.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	sink *sink // under ws's write buffer: a round goes out in one write
	feed *feed // under ws's reader
	p    Principal

	batch bool  // the client reads batch frames (it said so at auth)
	q     queue // bounded: overflow closes the connection (slow consumer)
	// writingSince is the server tick at which the current write began,
	// 0 when not writing (see send and Server.watchdog).
	writingSince atomic.Int64
	dead         atomic.Bool
	pongAt       atomic.Int64 // the server tick at which the last pong arrived (Server.heartbeat)

	mu   sync.Mutex      // guards subs (the reader changes it; the hub reads it on removal)
	subs []*subscription // at most MaxSubscriptions: a slice costs less than a map per connection

	// The first two subscriptions live here, in the connection's one
	// allocation (most clients hold one or two); a slot is used once,
	// never reused, since queued items may still point to its
	// subscription after an unsubscribe.
	slots     [2]subscription
	slotsUsed int
	subsArr   [2]*subscription // subs' first backing array

	closeOnce sync.Once
	endOnce   sync.Once
}

// push queues an item without ever blocking the hub. A full queue means
// the client reads slower than notifications arrive: the connection is
// closed with CloseSlowConsumer, and the client resumes with since.
func (c *conn) push(it item) {
	if c.dead.Load() {
		return
	}
	ok, start := c.q.push(it)
	if !ok {
		metrics.WSOverflows.Inc()
		c.closeWith(CloseSlowConsumer, "slow consumer: resume with since")
		return
	}
	if start {
		c.s.enqueue(c)
	}
}

// queue is a bounded FIFO that the server's writers empty, round by round:
// an idle connection holds no buffer and no writer goroutine (a buffered
// channel and a permanent writer would cost every idle connection
// QueueSize slots and a stack).
type queue struct {
	mu      sync.Mutex
	items   []item
	spare   []item
	max     int
	writing bool // in Server.writable or in a round (or the connection is dead)
}

// push appends it; ok=false means the queue is full. start=true means the
// caller must put the connection in line for a writer.
func (q *queue) push(it item) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.max {
		return false, false
	}
	q.items = append(q.items, it)
	if !q.writing {
		q.writing = true
		return true, true
	}
	return true, false
}

// take returns everything queued (valid until the next take); nil when
// the queue is empty.
func (q *queue) take() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.idleLocked() {
		return nil
	}
	out := q.items
	q.items, q.spare = q.spare[:0], out
	return out
}

// done is called after a round: true means the queue is empty and the
// connection leaves the line (the next push puts it back).
func (q *queue) done() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idleLocked()
}

func (q *queue) idleLocked() bool {
	if len(q.items) > 0 {
		return false
	}
	q.writing = false
	q.items, q.spare = nil, nil // an idle connection keeps no queue memory
	return true
}

// kill makes every later push a no-op that starts nothing.
func (q *queue) kill() {
	q.mu.Lock()
	q.writing, q.items, q.spare, q.max = true, nil, nil, 1<<30
	q.mu.Unlock()
}

// closeWith starts the close handshake once; the feed's pump then ends
// the connection when the socket closes. It never blocks.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.logger().Debug("closing WebSocket", "code", int(code), "reason", reason)
		go func() { _ = c.ws.Close(code, reason) }()
	})
}

// end releases the connection: out of the hub, nothing more written.
func (c *conn) end() {
	c.endOnce.Do(func() {
		c.dead.Store(true)
		c.s.hub.removeConn(c)
		c.q.kill()
	})
}

// logger is built on use: most connections never log, and a logger with
// attributes costs memory per connection.
func (c *conn) logger() *slog.Logger { return c.s.log.With("user_id", c.p.UserID) }

// answer queues the answer to a client's ping (the feed's owner).
func (c *conn) answer(pong []byte) { c.push(item{kind: itemControl, frame: pong}) }

// ponged records a pong for the heartbeat (the feed's owner).
func (c *conn) ponged() { c.pongAt.Store(c.s.tick.Load()) }

// ended releases what the connection held once its feed has stopped
// reading (the feed's owner; called once).
func (c *conn) ended() {
	c.end()
	metrics.WSConnections.Dec()
	c.s.open.Add(-1)
	c.s.wg.Done()
}

// readMessages handles the client messages the feed has waiting, then
// returns; the feed starts it again when the next one is complete.
func (c *conn) readMessages() {
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			_ = c.ws.CloseNow() // the pump's read then fails: the connection ends
			c.feed.took(true)
			return
		}
		if !c.handle(data) {
			c.feed.took(true)
			return
		}
		if !c.feed.took(false) {
			return
		}
	}
}

// handle handles one client message; false means the connection is
// closing and reads no more.
func (c *conn) handle(data []byte) bool {
	var in inbound
	if err := json.Unmarshal(data, &in); err != nil {
		c.closeWith(ClosePolicy, "frame is not a JSON object")
		return false
	}
	switch in.Type {
	case "subscribe":
		c.subscribe(context.Background(), in)
	case "unsubscribe":
		c.unsubscribe(in.Channel)
	case "auth":
		c.closeWith(ClosePolicy, "already authenticated")
		return false
	default:
		c.reply(errorFrame{Type: "error", Code: "bad_request", Message: fmt.Sprintf("unknown frame type %q", truncate(in.Type, 40))})
	}
	return true
}

func (c *conn) reply(v any) { c.push(item{kind: itemFrame, frame: mustJSON(v)}) }

func (c *conn) subscribe(ctx context.Context, in inbound) {
	c.mu.Lock()
	full := len(c.subs) >= c.s.cfg.MaxSubscriptions
	c.mu.Unlock()
	if full { // checked again below; first, before any database work
		c.reply(errorFrame{Type: "error", Code: "too_many_subscriptions", Channel: truncate(in.Channel, 80),
			Message: fmt.Sprintf("at most %d subscriptions per connection", c.s.cfg.MaxSubscriptions)})
		return
	}
	ch, err := parseChannel(in.Channel, c.p)
	if err == nil && ch.kind == kindOrder {
		err = c.s.authorizeOrder(ctx, ch.orderID, c.p.UserID)
	}
	if err != nil {
		code := "unknown_channel"
		switch {
		case errors.Is(err, errForbidden):
			code = "forbidden"
		case !errors.Is(err, errUnknownChannel):
			code = "unavailable"
			c.logger().Warn("subscribe failed", "channel", truncate(in.Channel, 80), "err", err)
			err = errors.New("cannot check the channel now; try again")
		}
		c.reply(errorFrame{Type: "error", Code: code, Channel: truncate(in.Channel, 80), Message: err.Error()})
		return
	}
	if in.Since < 0 {
		in.Since = 0
	}
	c.mu.Lock()
	if c.find(ch.name) >= 0 {
		c.mu.Unlock()
		c.reply(errorFrame{Type: "error", Code: "already_subscribed", Channel: ch.name, Message: "already subscribed; unsubscribe first to restart from another seq"})
		return
	}
	if len(c.subs) >= c.s.cfg.MaxSubscriptions {
		c.mu.Unlock()
		c.reply(errorFrame{Type: "error", Code: "too_many_subscriptions", Channel: ch.name,
			Message: fmt.Sprintf("at most %d subscriptions per connection", c.s.cfg.MaxSubscriptions)})
		return
	}
	var s *subscription
	if c.slotsUsed < len(c.slots) {
		s = &c.slots[c.slotsUsed]
		c.slotsUsed++
	} else {
		s = new(subscription)
	}
	s.c, s.ch, s.last, s.ready = c, ch, in.Since, !ch.ordered()
	if c.subs == nil {
		c.subs = c.subsArr[:0]
	}
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	// Index first, then queue the backfill: every live item queued before
	// the backfill runs is already in the inbox (it was committed before
	// it was published), so the backfill's read covers it, and every item
	// after it is checked against last. No gap, no duplicate.
	c.s.hub.add(s)
	c.push(item{kind: itemSubscribe, sub: s})
}

// find returns the index of c's subscription to the channel name, or -1;
// the caller holds c.mu.
func (c *conn) find(name string) int {
	return slices.IndexFunc(c.subs, func(s *subscription) bool { return s.ch.name == name })
}

func (c *conn) unsubscribe(name string) {
	c.mu.Lock()
	i := c.find(name)
	var s *subscription
	if i >= 0 {
		s = c.subs[i]
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	c.mu.Unlock()
	if s == nil {
		c.reply(errorFrame{Type: "error", Code: "not_subscribed", Channel: truncate(name, 80), Message: "not subscribed"})
		return
	}
	s.removed.Store(true)
	c.s.hub.remove(s)
	c.reply(unsubscribedFrame{Type: "unsubscribed", Channel: name})
}

// round writes everything c's queue holds, in queue order, and reports
// whether more arrived meanwhile (c must then go back in line). Only the
// writer that took c from Server.writable runs its round, so frames are
// written in queue order.
//
// A connection waits in line while its notifications pile up, so under
// load one round writes many of them together (one batch frame for a
// client that asked for batches), and the writers are a fixed few: with a
// goroutine per busy connection, 10,000 of them kept the scheduler's run
// queue so long that the NATS reader and the dispatcher waited a full
// turn of it for every message, and every write carried one item.
// Hazards: a writer is held during a backfill's inbox reads too (which
// bounds the database load of a reconnect storm to WriteConcurrency
// queries, and delays live writes meanwhile), and during a blocked write,
// until the watchdog drops the connection after WriteTimeout (see send).
func (c *conn) round() (more bool) {
	items := c.q.take()
	if items == nil { // only after a kill
		return false
	}
	o := out{c: c}
	c.sink.hold()
	var err error
	for i, it := range items {
		if err == nil {
			err = c.write(&o, it)
		}
		items[i] = item{} // release the frame
	}
	if err == nil {
		err = o.done()
	} else {
		_ = o.done()
	}
	if ferr := c.flush(); err == nil {
		err = ferr
	}
	if err == nil {
		return !c.q.done()
	}
	c.dead.Store(true)
	c.q.kill()
	if errors.Is(err, errInbox) {
		c.logger().Warn("backfill failed; client asked to retry", "err", err)
		c.closeWith(CloseTryAgain, "inbox unavailable: reconnect later with since")
	} else {
		c.closeWith(websocket.StatusInternalError, "write failed")
	}
	return false
}

var errInbox = errors.New("inbox")

// write writes one item through o (which may hold notifications back to
// coalesce them; the caller flushes o at the end of the round).
func (c *conn) write(o *out, it item) error {
	switch it.kind {
	case itemFrame:
		return o.control(it.frame)
	case itemControl:
		return o.raw(it.frame)
	case itemSubscribe:
		s := it.sub
		if s.removed.Load() {
			return nil
		}
		if err := o.control(mustJSON(subscribedFrame{Type: "subscribed", Channel: s.ch.name, Since: s.last})); err != nil {
			return err
		}
		if err := c.backfill(o, s, 0); err != nil {
			return err
		}
		s.ready = true
		return nil
	case itemResync:
		c.mu.Lock()
		subs := slices.Clone(c.subs)
		c.mu.Unlock()
		for _, s := range subs {
			if s.ready && s.ch.ordered() && !s.removed.Load() {
				if err := c.backfill(o, s, 0); err != nil {
					return err
				}
			}
		}
		return nil
	case itemNotification:
		s := it.sub
		if s.removed.Load() || !s.ready || !it.note.render() {
			return nil
		}
		seq := it.note.seq
		if s.ch.ordered() {
			if seq <= s.last {
				return nil // already sent (from the backfill, or a redelivery)
			}
			if s.ch.gapChecked() && seq > s.last+1 {
				// A live message went missing (NATS reconnect, slow
				// consumer on the NATS side): the inbox has it.
				if err := c.backfill(o, s, seq-1); err != nil {
					return err
				}
			}
			s.last = seq
		}
		return o.notification(it.note.frames[it.key])
	}
	return nil
}

// backfill writes the inbox entries of s after s.last, up to and
// including until (0: all), page by page, through o.
func (c *conn) backfill(o *out, s *subscription, until int64) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		entries, err := c.s.inbox.After(ctx, s.ch, s.last, c.s.cfg.BackfillPage)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %w", errInbox, err)
		}
		for _, e := range entries {
			if until > 0 && e.Seq > until {
				return nil
			}
			if err := o.notification(frameNotification(s.ch.name, e.Seq, e.Event)); err != nil {
				return err
			}
			s.last = e.Seq
		}
		if len(entries) < c.s.cfg.BackfillPage {
			return nil
		}
	}
}

// send writes one text frame. The context has no deadline: a deadline per
// write costs a timer and a context per frame on the hot path. Instead the
// write is stamped with the server's clock tick and the server's watchdog
// drops a connection whose write has not returned within WriteTimeout (its
// socket buffers are full: it stopped reading, or the network is gone); it
// resumes with since. A client that reads slowly but steadily fills its
// queue first and is closed as a slow consumer.
func (c *conn) send(frame []byte) error {
	c.writingSince.Store(c.s.tick.Load())
	err := c.sink.text(frame)
	c.writingSince.Store(0)
	return err
}

// flush writes the round the sink holds (the frames send wrote since
// the round began), stamped for the watchdog like send.
func (c *conn) flush() error {
	c.writingSince.Store(c.s.tick.Load())
	err := c.sink.release()
	c.writingSince.Store(0)
	return err
}

// stuck reports whether a write of c has been blocked since before tick
// minTick.
func (c *conn) stuck(minTick int64) bool {
	since := c.writingSince.Load()
	return since != 0 && since < minTick
}
