// Package provider speaks the payment provider's HTTP protocol: Server is
// a realistic simulator of an external provider (authorize, capture, void,
// refund with idempotency keys, latency, declines, outages and a ledger),
// Client is what the payments participant calls it with (retries with
// backoff behind a circuit breaker).
//
// The protocol, shared by both:
//
//	GET  /v1/authorizations?order_id=                         → 200 AuthorizationList
//	POST /v1/authorizations                 AuthorizeRequest  → 201 Authorization (402 when declined)
//	POST /v1/authorizations/{id}/capture    AmountRequest     → 201 Operation
//	POST /v1/authorizations/{id}/void       {}                → 201 Operation
//	POST /v1/authorizations/{id}/refund     AmountRequest     → 201 Operation
//	GET  /v1/ledger                                           → 200 Ledger
//	GET  /admin/faults, PUT /admin/faults   Faults            → 200 Faults
//
// Every POST needs an Idempotency-Key header. The same key with the same
// method, path and body replays the first answer (with header
// Idempotent-Replayed: true); with anything different it is 422. Errors
// are RFC 9457 problem+json.
//
// Server journals every answer (Options.DataDir) and then keeps only a
// bounded working set in memory (Options.MaxInMemory, least recently
// touched evicted), reading the rest back from the journal through an
// index file when asked: memory stays flat however long it runs, and
// every answer is the one an unbounded server would give. Without a
// journal nothing is evicted (tests, short runs).
package provider

import (
	"encoding/json"
	"fmt"
	"time"
)

// Authorization statuses.
const (
	StatusAuthorized = "authorized"
	StatusDeclined   = "declined"
	StatusCaptured   = "captured"
	StatusVoided     = "voided"
	StatusRefunded   = "refunded"
)

// Deterministic declines: tests and the load generator force a decline
// with an amount whose last two digits are DeclineAmountSuffix, or a
// customer id containing DeclineCustomerMarker.
const (
	DeclineAmountSuffix   = 51
	DeclineCustomerMarker = "decline"
)

// HeaderIdempotencyKey and HeaderReplayed are the idempotency headers.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// AuthorizeRequest asks to hold Amount (minor units) on the customer's card.
type AuthorizeRequest struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
}

// AmountRequest is the body of capture and refund.
type AmountRequest struct {
	Amount int64 `json:"amount"`
}

// Authorization is the provider's record of one authorization and what
// happened to it since; the ledger is a list of them.
type Authorization struct {
	ID          string    `json:"id"`
	OrderID     string    `json:"order_id"`
	CustomerID  string    `json:"customer_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	DeclineCode string    `json:"decline_code,omitempty"`
	CaptureID   string    `json:"capture_id,omitempty"`
	Captured    int64     `json:"captured,omitempty"`
	VoidID      string    `json:"void_id,omitempty"`
	RefundID    string    `json:"refund_id,omitempty"`
	Refunded    int64     `json:"refunded,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// AuthorizationList answers GET /v1/authorizations?order_id=: every
// authorization made for the order (oldest first, any status), so a
// caller that lost an answer can find what the provider holds.
type AuthorizationList struct {
	Authorizations []Authorization `json:"authorizations"`
}

// Operation is the answer to capture, void and refund.
type Operation struct {
	ID              string `json:"id"`
	AuthorizationID string `json:"authorization_id"`
	Status          string `json:"status"` // the authorization's status after the operation
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}

// Ledger is every authorization the provider holds, oldest first, with totals.
type Ledger struct {
	Authorizations []Authorization `json:"authorizations"`
	Totals         Totals          `json:"totals"`
}

// Totals sum the ledger: counts by current status, and the money moved.
type Totals struct {
	ByStatus       map[string]int `json:"by_status"`
	CapturedAmount int64          `json:"captured_amount"`
	RefundedAmount int64          `json:"refunded_amount"`
}

// Outage modes of Faults.
const (
	OutageOff     = "off"     // answer normally
	OutageError   = "error"   // answer 503 to every payment request
	OutageTimeout = "timeout" // never answer (until the client gives up)
)

// Faults are the simulator's runtime-adjustable imperfections. In a PUT
// to /admin/faults, absent fields keep their value.
type Faults struct {
	Outage      string   `json:"outage"`
	Latency     Duration `json:"latency"`
	Jitter      Duration `json:"jitter"`
	DeclineRate float64  `json:"decline_rate"`
}

// Validate checks the settings.
func (f Faults) Validate() error {
	switch f.Outage {
	case OutageOff, OutageError, OutageTimeout:
	default:
		return fmt.Errorf("outage: want off, error or timeout, got %q", f.Outage)
	}
	if f.Latency < 0 || f.Jitter < 0 || time.Duration(f.Latency+f.Jitter) > time.Minute {
		return fmt.Errorf("latency and jitter: want 0..1m in total, got %s and %s", time.Duration(f.Latency), time.Duration(f.Jitter))
	}
	if f.DeclineRate < 0 || f.DeclineRate > 1 {
		return fmt.Errorf("decline_rate: want 0..1, got %g", f.DeclineRate)
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("5ms").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"5ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}
