package events

import (
	"encoding/base64"
	"regexp"
)

// Notifications context: user-facing messages the notifier derives from
// domain events and the WebSocket role pushes to browsers.
var (
	// NotificationV1 is one entry of a user's notification inbox. Its
	// subject is the user's channel ("user.<customer token>"), and it is
	// published once, on ntf.user.<customer token>. A notification about
	// an order carries the order id in the HeaderOrder NATS header, from
	// which the WebSocket server also delivers it to the order's channel
	// and the ops feed (no copy is published on those subjects).
	NotificationV1 = register("notifications", "notification", 1, Notification)
)

// NotificationData is the data of NotificationV1.
//
// Invariant: for one user, Seq is 1, 2, 3, … with no gap and no repeat,
// in the order the notifier committed the entries; the inbox table
// (public.notifications) holds the same sequence, so a client that saw
// Seq n resumes from exactly n.
type NotificationData struct {
	UserID  string            `json:"user_id"`
	Seq     int64             `json:"seq"`
	Kind    string            `json:"kind"`
	Title   string            `json:"title"`
	Body    string            `json:"body"`
	Links   NotificationLinks `json:"links"`
	OrderID string            `json:"order_id,omitempty"`
	Source  NotificationCause `json:"source"`
}

// Notification kinds: the values of NotificationData.Kind the notifier
// makes. A user may mute any of them (notifier/prefs); the list is what
// the preferences API accepts.
const (
	KindOrderPlaced     = "order.placed"
	KindOrderConfirmed  = "order.confirmed"
	KindOrderCancelled  = "order.cancelled"
	KindPaymentRefunded = "payment.refunded"
)

// NotificationKinds lists the notification kinds, sorted.
func NotificationKinds() []string {
	return []string{KindOrderCancelled, KindOrderConfirmed, KindOrderPlaced, KindPaymentRefunded}
}

// NotificationLinks are related resources of the read API.
type NotificationLinks struct {
	Order    string `json:"order,omitempty"`
	Timeline string `json:"timeline,omitempty"`
}

// NotificationCause names the domain event a notification was made from.
type NotificationCause struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Subject string `json:"subject,omitempty"`
	Time    string `json:"time,omitempty"`
}

// Notification channels: the CloudEvent subject of a notification, and the
// key (the NATS subject below "ntf.") a WebSocket server indexes each
// audience by. The notifier publishes on user channels only; order and ops
// channels are derived from HeaderOrder, while a message published
// straight on ntf.order.<id> or ntf.ops.orders reaches them too.
const (
	ChannelUserPrefix  = "user."
	ChannelOrderPrefix = "order."
	ChannelOpsOrders   = "ops.orders"

	// HeaderOrder is the NATS header naming the order a notification on a
	// user channel is about (its data's order_id): it lets the WebSocket
	// server route the one message to the order channel and the ops feed
	// without decoding it first. The server checks it against the data.
	HeaderOrder = "Tradewind-Order"
)

var safeToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ChannelToken renders an id as one NATS subject token. Ids made of
// letters, digits, '-' and '_' stand as they are; any other id (dots,
// spaces, wildcards, non-ASCII) becomes "~" + its unpadded base64url, so
// that no id can reach into another subject or form a wildcard.
func ChannelToken(id string) string {
	if safeToken.MatchString(id) {
		return id
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// UserChannel is the channel of a user's personal notifications.
func UserChannel(userID string) string { return ChannelUserPrefix + ChannelToken(userID) }

// OrderChannel is the channel of one order's notifications.
func OrderChannel(orderID string) string { return ChannelOrderPrefix + ChannelToken(orderID) }
