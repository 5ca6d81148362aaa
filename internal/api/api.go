// Package api is the command gateway: producer services and browsers that
// do not speak NATS send commands over HTTP, with the guarantees direct
// NATS producers get.
//
// A command request goes through, in order: authentication (API key or
// user JWT; 401/503), scope (403), schema version negotiation
// (Accept-Version; 400/406), the shared rate limit (429 with Retry-After
// and RateLimit-* headers), the Idempotency-Key (400 without one), body
// checks (415, 413, malformed JSON 400), the route's own rules (for
// orders: who the customer is, and prices from the catalog for callers
// without the orders:price scope; 403/422), schema violations (422 naming
// the field), then the idempotency store (409 in flight, 422 reused key,
// replay of the stored response) and finally the publish to JetStream.
//
// Trust: the gateway is where untrusted callers (browsers' user tokens,
// API keys with narrow scopes) meet commands that participants act on
// without re-checking. So what a participant cannot check against its own
// state is settled here: an order's prices are the catalog's unless the
// caller's key holds orders:price (see preparePlaceOrder and
// handlers' package doc).
//
// Invariant: 202 Accepted is written only after JetStream's durable ack of
// the command. When NATS cannot take it the answer is 503 with
// Retry-After, never a 202 for a lost command. The command's CloudEvent id
// is derived from (caller, Idempotency-Key, request), so however often a
// request is retried — past the idempotency store's memory included — it
// is one command: JetStream drops repeated ids in its duplicate window and
// the consumers' inboxes ignore them forever.
//
// The 202 carries the aggregate id, a Location to its read model and a
// position token: "COMMANDS:<stream sequence>" (also in the
// Tradewind-Position header), the command's place in the COMMANDS stream.
// See docs/gateway.md for how reads use it.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/idempotency"
	"github.com/tradewind/tradewind/internal/ratelimit"
)

// Publisher publishes a command and returns JetStream's ack.
type Publisher interface {
	Publish(ctx context.Context, e *event.Event) (*jetstream.PubAck, error)
	// Connected reports whether a publish can succeed now (a cheap check
	// that turns an outage into an immediate 503 rather than a timeout).
	Connected() bool
}

// JetStreamPublisher publishes as broker.Publish does (binary CloudEvent,
// Nats-Msg-Id = event id, waiting for the durable ack) but without
// validating the data against its schema again: the gateway validates
// every command exactly once, before it claims the Idempotency-Key
// (validate in command.go), and builds the event from those bytes.
// Hazard: anything else publishing through it must validate first, or
// use broker.Publish.
type JetStreamPublisher struct{ JS jetstream.JetStream }

// Publish implements Publisher.
func (p JetStreamPublisher) Publish(ctx context.Context, e *event.Event) (*jetstream.PubAck, error) {
	return broker.PublishValidated(ctx, p.JS, e)
}

// Connected implements Publisher.
func (p JetStreamPublisher) Connected() bool { return p.JS.Conn().IsConnected() }

// Authenticator checks API keys; *auth.Keys implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (auth.Principal, error)
}

// TokenVerifier checks user tokens; *auth.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Claims, error)
}

// SessionRevoker revokes a session; *auth.Revocations implements it.
type SessionRevoker interface {
	Revoke(ctx context.Context, tokenID string) error
}

// Limiter decides rate limits; *ratelimit.Limiter implements it.
type Limiter interface {
	Allow(ctx context.Context, bucket string, l ratelimit.Limit) ratelimit.Decision
}

// IdempotencyStore remembers keys; *idempotency.Store implements it.
type IdempotencyStore interface {
	Begin(ctx context.Context, req idempotency.Request) (*idempotency.Claim, *idempotency.Response, error)
	Complete(ctx context.Context, c *idempotency.Claim, resp idempotency.Response) error
	Release(ctx context.Context, c *idempotency.Claim) error
}

// OrderOwners tells who owns an order, so that a customer can cancel only
// their own (found=false for an unknown order).
type OrderOwners interface {
	OrderOwner(ctx context.Context, orderID string) (customerID string, found bool, err error)
}

// Config configures the gateway.
type Config struct {
	BodyLimit      int64           // bytes; default 1 MiB
	Limit          ratelimit.Limit // default per caller and route class
	PublishTimeout time.Duration   // default 5s
}

func (c *Config) setDefaults() {
	if c.BodyLimit <= 0 {
		c.BodyLimit = 1 << 20
	}
	if c.Limit == (ratelimit.Limit{}) {
		c.Limit = ratelimit.Limit{Rate: 100, Burst: 200}
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
}

// Deps are the gateway's collaborators; all are required.
type Deps struct {
	Publisher   Publisher
	Keys        Authenticator
	Tokens      TokenVerifier
	Sessions    SessionRevoker
	Limiter     Limiter
	Idempotency IdempotencyStore
	Orders      OrderOwners
	Catalog     Catalog // prices orders of callers without the orders:price scope
	Images      ImageStore
	// Preferences holds users' muted notification kinds (GET and PUT
	// /v1/notifications/preferences).
	Preferences NotificationPreferences
	Log         *slog.Logger
	// Failures throttles failed authentications per client IP; nil: a
	// throttle of the gateway's own with the default limits.
	Failures *auth.Throttle
}

// Server is the command gateway.
type Server struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	routes []string
}

// New validates the configuration and dependencies.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.setDefaults()
	var errs []error
	if d.Publisher == nil || d.Keys == nil || d.Tokens == nil || d.Sessions == nil ||
		d.Limiter == nil || d.Idempotency == nil || d.Orders == nil || d.Catalog == nil || d.Images == nil || d.Preferences == nil {
		errs = append(errs, errors.New("publisher, keys, tokens, sessions, limiter, idempotency store, order owners, catalog, image store and preferences are required"))
	}
	if err := cfg.Limit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("default rate limit: %w", err))
	}
	if cfg.BodyLimit < 1024 {
		errs = append(errs, fmt.Errorf("body limit must be at least 1024 bytes, got %d", cfg.BodyLimit))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	if d.Failures == nil {
		d.Failures = auth.NewThrottle()
	}
	return &Server{cfg: cfg, d: d, log: log}, nil
}

// Register adds the gateway's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, c := range commands {
		s.handle(mux, c.pattern, s.command(c))
	}
	s.handle(mux, routeUploadImage, http.HandlerFunc(s.uploadImage))
	s.handle(mux, routeGetImage, http.HandlerFunc(s.getImage))
	s.handle(mux, "POST /v1/auth/logout", http.HandlerFunc(s.logout))
	s.handle(mux, "GET "+routePreferences, http.HandlerFunc(s.preferences))
	s.handle(mux, "PUT "+routePreferences, http.HandlerFunc(s.preferences))
	s.handle(mux, "GET /openapi.json", http.HandlerFunc(serveOpenAPI))
	s.handle(mux, "GET /docs", http.HandlerFunc(serveDocs))
}

func (s *Server) handle(mux *http.ServeMux, pattern string, h http.Handler) {
	mux.Handle(pattern, s.Wrap(h))
	s.routes = append(s.routes, pattern)
}

// Routes lists the patterns Register added, sorted.
func (s *Server) Routes() []string {
	out := append([]string(nil), s.routes...)
	sort.Strings(out)
	return out
}
