package ws

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
)

// Close codes. 4000-4999 are the application's own (RFC 6455 §7.4.2); the
// others are the standard codes used for their standard meaning. A client
// reconnects (with since) after every code except CloseAuthFailed and
// CloseRevoked, which need a new token first.
const (
	// CloseAuthFailed: no auth frame in time, or a missing, malformed,
	// badly signed or expired token. Get a new token, then reconnect.
	CloseAuthFailed websocket.StatusCode = 4001
	// CloseRevoked: the session was revoked (logout, admin action), at
	// connect or while connected. Do not reconnect with the same token.
	CloseRevoked websocket.StatusCode = 4003
	// CloseSlowConsumer: the connection's send queue overflowed because
	// the client read too slowly. Reconnect with since = last seq seen:
	// nothing is lost.
	CloseSlowConsumer websocket.StatusCode = 4008
	// CloseTooManyConnections: the user already has the maximum number of
	// connections on this instance.
	CloseTooManyConnections websocket.StatusCode = 4029
	// CloseRestart: the server is shutting down; reconnect (to another
	// instance) with since. It is the standard 1012 "Service Restart".
	CloseRestart = websocket.StatusServiceRestart
	// ClosePolicy: the client broke the protocol (a frame that is not a
	// JSON object of a known type, a second auth). Standard 1008.
	ClosePolicy = websocket.StatusPolicyViolation
	// CloseTryAgain: the server could not read the inbox (database down);
	// reconnect later with since. Standard 1013 "Try Again Later".
	CloseTryAgain = websocket.StatusTryAgainLater
	// A frame larger than the limit is closed by the WebSocket library
	// with the standard 1009 "Message Too Big".
)

// Channel kinds.
const (
	kindUser  = "user"
	kindOrder = "order"
	kindOps   = "ops"
)

// RoleOps is the role that may subscribe to the ops feed.
const RoleOps = "ops"

// channel is a client-facing channel resolved for one principal.
type channel struct {
	name    string // as the client names it: "user", "order.<id>", "ops.orders"
	key     string // the NATS subject below "ntf." that feeds it
	kind    string
	userID  string // user and order channels: whose inbox backfills it
	orderID string // order channels
}

// ordered channels carry the user's gap-free seq and are backfilled from
// the inbox; the ops feed is live only.
func (c channel) ordered() bool { return c.kind != kindOps }

// gapChecked channels see every seq of the user, so a jump in seq means a
// lost live message and is filled from the inbox at once. An order
// channel sees a subset of the user's seqs, so it relies on resync.
func (c channel) gapChecked() bool { return c.kind == kindUser }

var (
	errUnknownChannel = errors.New("unknown channel")
	errForbidden      = errors.New("forbidden")
)

// parseChannel resolves a channel name for user p. It checks the name's
// form and role-based rights; order ownership is checked by the caller
// against the inbox.
func parseChannel(name string, p Principal) (channel, error) {
	switch {
	case name == "user":
		return channel{name: name, key: events.UserChannel(p.UserID), kind: kindUser, userID: p.UserID}, nil
	case name == events.ChannelOpsOrders:
		if !p.HasRole(RoleOps) {
			return channel{}, fmt.Errorf("%w: %s needs the %s role", errForbidden, name, RoleOps)
		}
		return channel{name: name, key: name, kind: kindOps}, nil
	case strings.HasPrefix(name, events.ChannelOrderPrefix):
		id := strings.TrimPrefix(name, events.ChannelOrderPrefix)
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id {
			return channel{}, fmt.Errorf("%w: order id must be a lower-case UUID", errUnknownChannel)
		}
		return channel{name: name, key: events.OrderChannel(id), kind: kindOrder, userID: p.UserID, orderID: id}, nil
	}
	return channel{}, fmt.Errorf("%w %q (want user, order.<id> or %s)", errUnknownChannel, truncate(name, 80), events.ChannelOpsOrders)
}

// inbound is any frame a client sends.
type inbound struct {
	Type    string `json:"type"`
	Token   string `json:"token,omitempty"`
	Channel string `json:"channel,omitempty"`
	Since   int64  `json:"since,omitempty"`
	Batch   bool   `json:"batch,omitempty"` // auth: the client reads batch frames
}

// Outbound control frames (notifications are built by frameNotification).
type (
	authenticatedFrame struct {
		Type   string `json:"type"` // "authenticated"
		UserID string `json:"user_id"`
	}
	subscribedFrame struct {
		Type    string `json:"type"` // "subscribed"
		Channel string `json:"channel"`
		Since   int64  `json:"since"`
	}
	unsubscribedFrame struct {
		Type    string `json:"type"` // "unsubscribed"
		Channel string `json:"channel"`
	}
	errorFrame struct {
		Type    string `json:"type"` // "error"
		Code    string `json:"code"` // forbidden, unknown_channel, too_many_subscriptions, bad_request
		Channel string `json:"channel,omitempty"`
		Message string `json:"message"`
	}
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings and numbers are marshalled
	}
	return b
}

// frameNotification renders the notification frame of a structured
// CloudEvent. The channel name is a safe token (letters, digits, '.', '-',
// '_', '~'), so it needs no escaping.
func frameNotification(channelName string, seq int64, structured []byte) []byte {
	b := make([]byte, 0, len(structured)+len(channelName)+64)
	b = append(b, `{"type":"notification","channel":"`...)
	b = append(b, channelName...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"event":`...)
	b = append(b, structured...)
	b = append(b, '}')
	return b
}

// frameChannel is the channel name a frame for NATS key carries.
func frameChannel(key string) string {
	if strings.HasPrefix(key, events.ChannelUserPrefix) {
		return "user"
	}
	return key
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
