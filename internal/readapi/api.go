// Package readapi serves the read models over HTTP: GET routes under /v1,
// JSON bodies (the analytics routes also CSV, with ?format=csv: table.go),
// RFC 9457 problem+json errors.
//
// Every response carries Tradewind-Position: the EVENTS stream position
// the answer reflects (the checkpoint of the projection read, taken in the
// same snapshot as the data). A request carrying a position token
// (?after=TOKEN or the Tradewind-After header) waits, at most WaitTimeout,
// until that projection reflects it, else answers 503 with Retry-After:
// read-your-writes across the command/query split. A token is an EVENTS
// position, or the gateway's COMMANDS:<seq> from a 202, which is resolved
// through the command's inbox row to the EVENTS position holding the
// events it caused (see position.go).
package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/projector"
)

// Read scopes: each lets its holder read every customer's data of one
// kind. A caller without the scope reads only its own customer's data (a
// browser user's), or nothing (an API key without it).
const (
	ScopeOrders    = "orders:read"    // orders and their timelines
	ScopeCustomers = "customers:read" // customer histories
	ScopeAnalytics = "analytics:read" // sales analytics
)

// The duplicates report (GET /v1/analytics/duplicates) lists customers'
// ids, emails and names: it takes both ScopeAnalytics and ScopeCustomers.

// Caller is who is asking, as the gateway's authentication established.
type Caller interface {
	// CustomerID is the customer the caller acts for ("" for staff and
	// producer services).
	CustomerID() string
	// ReadsAll reports whether the caller holds the read scope (one of
	// ScopeOrders, ScopeCustomers, ScopeAnalytics): every customer's data
	// of that kind.
	ReadsAll(scope string) bool
}

// ErrAuthUnavailable: the caller's credentials could not be checked (the
// credential store is down); CallerFrom wraps it, the API answers 503.
var ErrAuthUnavailable = errors.New("credential store unavailable")

// Config wires the API.
type Config struct {
	Pool *pgxpool.Pool
	// CallerFrom returns the request's authenticated caller. Nil means no
	// authentication is installed: every request may read everything (the
	// development default until the gateway adds internal/auth). When set,
	// a request without a valid caller is answered 401; an error with a
	// RetryAfter() time.Duration method (a client throttled after failed
	// authentications) 429 with Retry-After; ErrAuthUnavailable 503.
	CallerFrom func(*http.Request) (Caller, error)
	// WaitTimeout bounds a read-your-writes wait (default 2 s, max 10 s).
	WaitTimeout time.Duration
	// EventsHead returns the EVENTS stream's last sequence; it resolves the
	// gateway's COMMANDS:<seq> tokens. Nil: only EVENTS positions are
	// accepted as tokens.
	EventsHead func(context.Context) (uint64, error)
	// Stale, when set, reports why a projection's read model cannot be
	// trusted (nil when it can): such reads answer 503 instead of stale
	// data (see projector.CheckStream).
	Stale func(projection string) error
	Log   *slog.Logger
}

// API is the read side's HTTP handlers.
type API struct {
	cfg Config
}

// Headers of the read-your-writes protocol.
const (
	HeaderPosition = "Tradewind-Position"
	HeaderAfter    = "Tradewind-After"
)

// New validates the configuration.
func New(cfg Config) (*API, error) {
	if cfg.Pool == nil {
		return nil, errors.New("readapi: a pool is required")
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 2 * time.Second
	}
	cfg.WaitTimeout = min(cfg.WaitTimeout, 10*time.Second)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &API{cfg: cfg}, nil
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("GET /v1/orders/{id}", a.read("orders", a.getOrder))
	mux.Handle("GET /v1/orders", a.read("orders", a.listOrders))
	mux.Handle("GET /v1/orders/{id}/timeline", a.read("order_timeline", a.orderTimeline))
	mux.Handle("GET /v1/inventory/{sku}", a.read("inventory", a.getInventory))
	mux.Handle("GET /v1/products/{sku}", a.read("product_search", a.getProduct))
	mux.Handle("GET /v1/products/search", a.read("product_search", a.searchProducts))
	mux.Handle("GET /v1/products/autocomplete", a.read("product_search", a.autocomplete))
	mux.Handle("GET /v1/customers/{id}/history", a.read("customers_history", a.customerHistory))
	mux.Handle("GET /v1/analytics/sales", a.read("sales", a.sales))
	mux.Handle("GET /v1/analytics/categories", a.read("sales", a.categoryRollup))
	mux.Handle("GET /v1/analytics/pivot", a.read("sales", a.pivot))
	mux.Handle("GET /v1/analytics/duplicates", a.read("customers_history", a.duplicates))
}

// request is what a route handler gets: the snapshot's transaction, the
// caller (nil without authentication) and the request.
type request struct {
	*http.Request
	tx     pgx.Tx
	caller Caller
}

// readsAll reports whether the caller may see every customer's data of the
// scope's kind.
func (r *request) readsAll(scope string) bool {
	return r.caller == nil || r.caller.ReadsAll(scope)
}

// mayRead reports whether the caller may see customer id's data of the
// scope's kind: with the scope, or as that customer. A caller acting for
// no customer (an API key) needs the scope.
func (r *request) mayRead(scope, customerID string) bool {
	return r.readsAll(scope) || (r.caller.CustomerID() != "" && r.caller.CustomerID() == customerID)
}

type handlerFunc func(r *request) (any, error)

// read wraps a route: authentication, the read-your-writes wait, one
// read-only REPEATABLE READ transaction holding the projection's position
// and the data, the JSON (or, for a table, CSV) answer or the problem.
func (a *API) read(projection string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		req := &request{Request: hr}
		if a.cfg.CallerFrom != nil {
			c, err := a.cfg.CallerFrom(hr)
			var throttled interface{ RetryAfter() time.Duration }
			switch {
			case errors.As(err, &throttled):
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(throttled.RetryAfter().Seconds())))))
				writeProblem(w, hr, problem{Status: http.StatusTooManyRequests, Title: "too many failed authentications",
					Detail: "this client failed to authenticate too often; the credentials were not checked"})
				return
			case errors.Is(err, ErrAuthUnavailable):
				a.cfg.Log.Warn("credential store unavailable", "err", err)
				w.Header().Set("Retry-After", "1")
				writeProblem(w, hr, problem{Status: http.StatusServiceUnavailable, Title: "credentials cannot be checked right now"})
				return
			case err != nil || c == nil:
				writeProblem(w, hr, problem{Status: http.StatusUnauthorized, Title: "authentication required"})
				return
			}
			req.caller = c
		}
		if a.cfg.Stale != nil {
			if err := a.cfg.Stale(projection); err != nil {
				writeProblem(w, hr, problem{Status: http.StatusServiceUnavailable, Title: "read model stale", Detail: err.Error()})
				return
			}
		}
		token, err := afterToken(hr)
		if err != nil {
			writeProblem(w, hr, badRequest("after", err.Error()))
			return
		}
		asCSV, err := formatParam(hr)
		if err != nil {
			a.fail(w, hr, err)
			return
		}
		ctx := hr.Context()
		if token != (position{}) {
			if !a.waitFor(w, hr, projection, token) {
				return
			}
		}
		var body any
		var pos uint64
		err = pgx.BeginTxFunc(ctx, a.cfg.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			cp, err := projector.LiveCheckpoint(ctx, tx, projection)
			if err != nil {
				return err
			}
			pos = cp.LastSeq
			req.tx = tx
			body, err = h(req)
			return err
		})
		if err != nil {
			a.fail(w, hr, err)
			return
		}
		if asCSV {
			t, ok := body.(csvAnswer)
			if !ok {
				writeProblem(w, hr, badRequest("format", "csv is offered by the analytics routes only"))
				return
			}
			w.Header().Set(HeaderPosition, strconv.FormatUint(pos, 10))
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+t.filename()+`"`)
			w.Header().Set("Cache-Control", "no-store")
			if err := t.writeCSV(w); err != nil {
				a.cfg.Log.Debug("write response", "err", err)
			}
			return
		}
		w.Header().Set(HeaderPosition, strconv.FormatUint(pos, 10))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err := json.NewEncoder(w).Encode(body); err != nil {
			a.cfg.Log.Debug("write response", "err", err)
		}
	})
}

// afterToken reads the position token: ?after= or the Tradewind-After header.
func afterToken(r *http.Request) (position, error) {
	s := r.URL.Query().Get("after")
	if s == "" {
		s = r.Header.Get(HeaderAfter)
	}
	if s == "" {
		return position{}, nil
	}
	return parsePosition(s)
}

// waitFor blocks, at most WaitTimeout in all, until projection reflects
// token; otherwise it answers 503 with Retry-After and returns false.
func (a *API) waitFor(w http.ResponseWriter, r *http.Request, projection string, token position) bool {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.WaitTimeout)
	defer cancel()
	behind := func(detail string, pos uint64) bool {
		w.Header().Set("Retry-After", "1")
		w.Header().Set(HeaderPosition, strconv.FormatUint(pos, 10))
		writeProblem(w, r, problem{Status: http.StatusServiceUnavailable, Title: "read model not caught up", Detail: detail})
		return false
	}
	want := token.events
	if token.commands > 0 {
		if a.cfg.EventsHead == nil {
			writeProblem(w, r, badRequest("after", "this server resolves only EVENTS positions"))
			return false
		}
		h, err := resolveCommand(ctx, a.cfg.Pool, a.cfg.EventsHead, token.commands)
		// The wait's deadline may also end a query in flight: still "not
		// applied yet", never a server error.
		if errors.Is(err, errCommandPending) || (errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil) {
			return behind(fmt.Sprintf("command COMMANDS:%d is not applied yet; retry shortly", token.commands), 0)
		}
		if err != nil {
			a.fail(w, r, err)
			return false
		}
		want = h
	}
	left := time.Until(deadlineOf(ctx))
	pos, err := projector.WaitFor(r.Context(), a.cfg.Pool, projection, want, max(left, 0))
	if errors.Is(err, projector.ErrBehind) || (errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil) {
		return behind(fmt.Sprintf("%s is at position %d, the request needs %d; retry shortly", projection, pos, want), pos)
	}
	if err != nil {
		a.fail(w, r, err)
		return false
	}
	return true
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if errors.As(err, &p) {
		writeProblem(w, r, *p)
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the client left
	}
	a.cfg.Log.Error("read API", "path", r.URL.Path, "err", err)
	writeProblem(w, r, problem{Status: http.StatusInternalServerError, Title: "internal error"})
}
