package ws

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cloudevents/sdk-go/v2/event"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/schemas"
)

// hub is the instance's index of local subscriptions by NATS key, fed by
// one core NATS subscription on ntf.>.
//
// Invariant: a message is decoded, validated and encoded once, and the
// same frame bytes are queued to every local subscriber of its channel;
// subscribers never share anything else.
type hub struct {
	log *slog.Logger

	mu    sync.RWMutex
	subs  map[string][]*subscription // by NATS key; subscription.at is each one's index
	conns map[*conn]struct{}
	users map[string]int // open connections per user

	scratch []target // targets of the message being dispatched (dispatch is serial)
}

func newHub(log *slog.Logger) *hub {
	return &hub{
		log:   log,
		subs:  map[string][]*subscription{},
		conns: map[*conn]struct{}{},
		users: map[string]int{},
	}
}

// addConn registers a connection unless its user is at the limit.
func (h *hub) addConn(c *conn, perUser int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if perUser > 0 && h.users[c.p.UserID] >= perUser {
		return false
	}
	h.users[c.p.UserID]++
	h.conns[c] = struct{}{}
	return true
}

// removeConn drops a connection and all its subscriptions.
func (h *hub) removeConn(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	if h.users[c.p.UserID]--; h.users[c.p.UserID] <= 0 {
		delete(h.users, c.p.UserID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.subs {
		h.unindex(s)
	}
}

func (h *hub) add(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.at = len(h.subs[s.ch.key])
	h.subs[s.ch.key] = append(h.subs[s.ch.key], s)
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unindex(s)
}

// unindex removes s from its key's list in O(1): the last one takes its
// place. A slice per key, not a set: most keys (a user's, an order's)
// have one or two subscribers, and a map per key cost every connection
// about 250 bytes.
func (h *hub) unindex(s *subscription) {
	list := h.subs[s.ch.key]
	if s.at >= len(list) || list[s.at] != s {
		return // not indexed
	}
	last := len(list) - 1
	list[s.at] = list[last]
	list[s.at].at = s.at
	list[last] = nil
	if last == 0 {
		delete(h.subs, s.ch.key)
		return
	}
	h.subs[s.ch.key] = list[:last]
}

// connections snapshots the open connections.
func (h *hub) connections() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c)
	}
	return out
}

// target is one subscriber of a message, with the index of the key (in
// routes) it subscribed by.
type target struct {
	sub *subscription
	key int
}

// routes are the keys a message on key reaches: its own and, for a user
// channel's message that names an order (events.HeaderOrder), the order's
// channel and the ops feed, since the notifier publishes each
// notification once.
func routes(key, orderID string) ([3]string, int) {
	if orderID != "" && strings.HasPrefix(key, events.ChannelUserPrefix) {
		return [3]string{key, events.OrderChannel(orderID), events.ChannelOpsOrders}, 3
	}
	return [3]string{key}, 1
}

// dispatch handles one message of ntf.>. NATS calls it from one goroutine
// per subscription, so messages are dispatched in arrival order and
// h.scratch needs no lock. It only routes: the message is decoded,
// checked and rendered by the first writer that needs it (note.render),
// not here: one goroutine doing every message's work fell behind the
// writers at 1,000 clients (bench-ws), with the backlog in the NATS
// client's pending messages, where no batching helps.
func (h *hub) dispatch(m *nats.Msg) {
	key, ok := strings.CutPrefix(m.Subject, events.NotificationPrefix)
	if !ok {
		return
	}
	keys, n := routes(key, m.Header.Get(events.HeaderOrder))
	h.mu.RLock()
	targets := h.scratch[:0]
	for i, k := range keys[:n] {
		for _, s := range h.subs[k] {
			targets = append(targets, target{sub: s, key: i})
		}
	}
	h.mu.RUnlock()
	h.scratch = targets[:0]
	if len(targets) == 0 {
		return // nobody here listens: not even decoded
	}
	nt := &note{h: h, msg: m, keys: keys}
	for _, t := range targets {
		nt.wanted[t.key] = true
	}
	for _, t := range targets {
		t.sub.c.push(item{kind: itemNotification, sub: t.sub, note: nt, key: uint8(t.key)})
	}
	clear(targets) // let closed connections be collected
}

// note is one message of ntf.> on its way to local subscribers. render
// decodes, checks and frames it once, for every subscriber: the frame of
// each key (routes) is one byte slice, shared by that key's subscribers.
type note struct {
	h      *hub
	msg    *nats.Msg
	keys   [3]string
	wanted [3]bool // keys with local subscribers

	once   sync.Once
	ok     bool
	seq    int64
	frames [3][]byte
}

// render reports whether the message is a valid notification (an invalid
// one is counted and logged once, and reaches no one); then seq and
// frames are set.
func (nt *note) render() bool {
	nt.once.Do(func() {
		seq, structured, err := encode(nt.msg)
		if err != nil {
			var inv *invalidError
			reason := "decode"
			if errors.As(err, &inv) {
				reason = inv.reason
			}
			metrics.WSDropped.WithLabelValues(reason).Inc()
			nt.h.log.Warn("notification dropped: not a valid notification", "subject", nt.msg.Subject, "reason", reason, "err", err)
			return
		}
		for i, want := range nt.wanted {
			if want {
				nt.frames[i] = frameNotification(frameChannel(nt.keys[i]), seq, structured)
			}
		}
		nt.seq, nt.ok = seq, true
		nt.msg = nil // the frames hold what is needed
	})
	return nt.ok
}

// encode decodes a notification message, validates it and renders it as
// structured JSON. Nothing reaches a browser unless it is a notification
// CloudEvent whose data passes its JSON Schema, whose subject is its
// channel's and whose events.HeaderOrder, if any, is its order: NATS
// permissions let only the notifier and the relay publish on ntf.>, and
// this check still holds if a credential leaks. It runs once per message
// and only when a local subscriber listens (dispatch returns before).
func encode(m *nats.Msg) (int64, []byte, error) {
	ev, err := cenats.Decode(m.Header, m.Data)
	if err != nil {
		return 0, nil, &invalidError{"decode", err}
	}
	if ev.Type() != events.NotificationV1 {
		return 0, nil, &invalidError{"type", fmt.Errorf("notification %s: type %q on %s", ev.ID(), ev.Type(), m.Subject)}
	}
	if err := schemas.ValidateEvent(ev); err != nil {
		return 0, nil, &invalidError{"schema", fmt.Errorf("notification %s: %w", ev.ID(), err)}
	}
	var d struct {
		Seq     int64  `json:"seq"`
		OrderID string `json:"order_id"`
	}
	if err := json.Unmarshal(ev.Data(), &d); err != nil || d.Seq < 1 {
		return 0, nil, &invalidError{"schema", fmt.Errorf("notification %s: no seq", ev.ID())}
	}
	if !onItsChannel(ev, d.OrderID, m.Subject) {
		return 0, nil, &invalidError{"subject", fmt.Errorf("notification %s for channel %q arrived on %s", ev.ID(), ev.Subject(), m.Subject)}
	}
	if h := m.Header.Get(events.HeaderOrder); h != "" && h != d.OrderID {
		return 0, nil, &invalidError{"subject", fmt.Errorf("notification %s about order %q names order %q in its header", ev.ID(), d.OrderID, h)}
	}
	structured, err := ev.MarshalJSON() // not json.Marshal: it would check and compact the SDK's output again
	if err != nil {
		return 0, nil, fmt.Errorf("notification %s: encode: %w", ev.ID(), err)
	}
	return d.Seq, structured, nil
}

// onItsChannel: a notification is published on its user's channel (its
// CloudEvent subject); one about an order may also be published straight
// on the order's channel or the ops feed; no other subject is its.
func onItsChannel(ev *event.Event, orderID, subject string) bool {
	if own, err := events.NATSSubject(ev); err == nil && subject == own {
		return true
	}
	return orderID != "" && (subject == events.NotificationPrefix+events.OrderChannel(orderID) || subject == events.NotificationPrefix+events.ChannelOpsOrders)
}

// invalidError is a notification refused before fan-out; reason labels
// metrics.WSDropped.
type invalidError struct {
	reason string
	err    error
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }
