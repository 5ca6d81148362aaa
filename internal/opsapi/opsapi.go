// Package opsapi serves the operators' HTTP endpoints under /v1/ops, the
// console's Live operations view and scripts use them:
//
//	GET    /v1/ops/consumers                 durable consumers, position and lag
//	GET    /v1/ops/flags                     feature flags and their rollout
//	GET    /v1/ops/dlq[?consumer=&limit=]    dead letters, oldest first
//	GET    /v1/ops/dlq/{id}                  one, with headers and body
//	POST   /v1/ops/dlq/{id}/replay           replay one (same event id) and remove it
//	POST   /v1/ops/dlq/replay[?consumer=]    replay all (of a consumer)
//	DELETE /v1/ops/dlq?confirm=purge[&consumer=]   purge for good
//
// The rules are the CLI's (`tradewind consumers`, `tradewind dlq`): the
// same internal/consumers and internal/dlq calls; a purge must be
// confirmed (the CLI asks, here ?confirm=purge; without it the answer is
// 400 saying how many would go). Every caller must be an operator: a user
// token with role ops, or an API key with scope "*" (401 without
// credentials, 403 for anyone else). Replays and purges are logged with
// the caller.
package opsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/consumers"
	"github.com/tradewind/tradewind/internal/dlq"
	"github.com/tradewind/tradewind/internal/flags"
)

// Authenticator returns the request's caller ("Authorization: Bearer").
type Authenticator func(*http.Request) (auth.Principal, error)

// API is the operators' endpoints.
type API struct {
	js    jetstream.JetStream
	authn Authenticator
	log   *slog.Logger
}

// New refuses nil dependencies; log may be nil.
func New(js jetstream.JetStream, authn Authenticator, log *slog.Logger) (*API, error) {
	if js == nil || authn == nil {
		return nil, errors.New("opsapi: JetStream and an authenticator are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &API{js: js, authn: authn, log: log}, nil
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("GET /v1/ops/consumers", a.op(a.listConsumers))
	mux.Handle("GET /v1/ops/flags", a.op(a.listFlags))
	mux.Handle("GET /v1/ops/dlq", a.op(a.listDLQ))
	mux.Handle("GET /v1/ops/dlq/{id}", a.op(a.showDLQ))
	mux.Handle("POST /v1/ops/dlq/{id}/replay", a.op(a.replayDLQ))
	mux.Handle("POST /v1/ops/dlq/replay", a.op(a.replayAllDLQ))
	mux.Handle("DELETE /v1/ops/dlq", a.op(a.purgeDLQ))
}

// Problem is an RFC 9457 answer.
type Problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

func problem(status int, title, detail string) *Problem {
	return &Problem{Status: status, Title: title, Detail: detail}
}

type handler func(r *http.Request, caller auth.Principal) (any, error)

// op authenticates and authorizes the caller, runs h with a bound, and
// writes its JSON or its problem.
func (a *API) op(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authn(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeProblem(w, problem(http.StatusUnauthorized, "Authentication required", "send Authorization: Bearer <operator token or API key>"))
			return
		}
		if !p.Can(auth.ScopeAll) { // operators, and API keys with every scope
			writeProblem(w, problem(http.StatusForbidden, "Forbidden", "operators only: a token with role ops, or an API key with scope *"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		body, err := h(r.WithContext(ctx), p)
		var prob *Problem
		switch {
		case errors.As(err, &prob):
			writeProblem(w, prob)
		case errors.Is(err, dlq.ErrNotFound):
			writeProblem(w, problem(http.StatusNotFound, "Not found", err.Error()))
		case errors.Is(err, dlq.ErrNotDeadLetter):
			writeProblem(w, problem(http.StatusUnprocessableEntity, "Not a dead letter", err.Error()))
		case err != nil:
			a.log.Warn("ops API", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "1")
			writeProblem(w, problem(http.StatusServiceUnavailable, "Broker unavailable", "the message broker did not answer; retry shortly"))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(body)
		}
	})
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Consumer is a durable consumer as GET /v1/ops/consumers shows it.
type Consumer struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Delivered   uint64 `json:"delivered"`
	AckFloor    uint64 `json:"ack_floor"`
	Pending     uint64 `json:"pending"` // the lag
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	DeadLetters uint64 `json:"dead_letters"`
	Paused      bool   `json:"paused"`
}

func (a *API) listConsumers(r *http.Request, _ auth.Principal) (any, error) {
	infos, err := consumers.List(r.Context(), a.js)
	if err != nil {
		return nil, err
	}
	out := make([]Consumer, len(infos))
	for i, c := range infos {
		out[i] = Consumer{Stream: c.Stream, Name: c.Name, Delivered: c.Delivered, AckFloor: c.AckFloor, Pending: c.Pending,
			AckPending: c.AckPending, Redelivered: c.Redelivered, DeadLetters: c.DeadLetters, Paused: c.Paused}
	}
	return map[string]any{"consumers": out}, nil
}

// Flag is a feature flag as GET /v1/ops/flags shows it (`tradewind flags
// list`): the rollout percentage and the sizes of its lists.
type Flag struct {
	Name      string    `json:"name"`
	Percent   float64   `json:"percent"`
	Allowed   int       `json:"allowed"`
	Denied    int       `json:"denied"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (a *API) listFlags(r *http.Request, _ auth.Principal) (any, error) {
	out := []Flag{}
	admin, err := flags.Existing(r.Context(), a.js)
	if errors.Is(err, flags.ErrNoBucket) {
		return map[string]any{"flags": out}, nil // no flag was ever set
	}
	if err != nil {
		return nil, err
	}
	fs, err := admin.List(r.Context())
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		out = append(out, Flag{Name: f.Name, Percent: f.Percent, Allowed: len(f.Allow), Denied: len(f.Deny), UpdatedAt: f.UpdatedAt})
	}
	return map[string]any{"flags": out}, nil
}

// Entry is a dead letter as the endpoints show it (dlq.View: `tradewind
// dlq list --json` and `show` print the same fields).
type Entry = dlq.View

func filterOf(r *http.Request, withLimit bool) (dlq.Filter, error) {
	q := r.URL.Query()
	f := dlq.Filter{Consumer: q.Get("consumer")}
	if len(f.Consumer) > 200 {
		return f, problem(http.StatusBadRequest, "Invalid consumer", "at most 200 bytes")
	}
	if s := q.Get("limit"); s != "" && withLimit {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, problem(http.StatusBadRequest, "Invalid limit", "limit must be 1..1000")
		}
		f.Limit = n
	} else if withLimit {
		f.Limit = 200
	}
	return f, nil
}

func (a *API) queue(ctx context.Context) (*dlq.Queue, error) {
	return dlq.Open(ctx, a.js)
}

func idOf(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, problem(http.StatusBadRequest, "Invalid dead letter id", "want a DLQ stream sequence, as the list shows")
	}
	return id, nil
}

func (a *API) listDLQ(r *http.Request, _ auth.Principal) (any, error) {
	f, err := filterOf(r, true)
	if err != nil {
		return nil, err
	}
	q, err := a.queue(r.Context())
	if err != nil {
		return nil, err
	}
	es, err := q.List(r.Context(), f)
	if err != nil {
		return nil, err
	}
	total, err := q.Count(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = e.View(false)
	}
	return map[string]any{"entries": out, "total": total}, nil
}

func (a *API) showDLQ(r *http.Request, _ auth.Principal) (any, error) {
	id, err := idOf(r)
	if err != nil {
		return nil, err
	}
	q, err := a.queue(r.Context())
	if err != nil {
		return nil, err
	}
	e, err := q.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return e.View(true), nil
}

// Replayed reports a replay.
type Replayed struct {
	ID        uint64 `json:"id"`
	Consumer  string `json:"consumer"`
	EventID   string `json:"event_id"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"` // already replayed: the broker dropped the copy
}

func replayedOf(rs []dlq.Replayed) []Replayed {
	out := make([]Replayed, len(rs))
	for i, r := range rs {
		out[i] = Replayed{ID: r.Entry.ID, Consumer: r.Entry.Consumer, EventID: r.Entry.EventID, Subject: r.Entry.Subject,
			Stream: r.Stream, Seq: r.Seq, Duplicate: r.Duplicate}
	}
	return out
}

func (a *API) replayDLQ(r *http.Request, p auth.Principal) (any, error) {
	id, err := idOf(r)
	if err != nil {
		return nil, err
	}
	q, err := a.queue(r.Context())
	if err != nil {
		return nil, err
	}
	rep, err := q.Replay(r.Context(), id)
	if err != nil {
		return nil, err
	}
	a.log.Info("dead letter replayed", "caller", p.Caller, "id", id, "consumer", rep.Entry.Consumer,
		"event_id", rep.Entry.EventID, "stream", rep.Stream, "seq", rep.Seq, "duplicate", rep.Duplicate)
	return map[string]any{"replayed": replayedOf([]dlq.Replayed{rep})}, nil
}

func (a *API) replayAllDLQ(r *http.Request, p auth.Principal) (any, error) {
	f, err := filterOf(r, false)
	if err != nil {
		return nil, err
	}
	q, err := a.queue(r.Context())
	if err != nil {
		return nil, err
	}
	reps, err := q.ReplayAll(r.Context(), f)
	a.log.Info("dead letters replayed", "caller", p.Caller, "consumer", f.Consumer, "count", len(reps), "err", err)
	if err != nil {
		return nil, fmt.Errorf("after %d replays: %w", len(reps), err)
	}
	return map[string]any{"replayed": replayedOf(reps)}, nil
}

func (a *API) purgeDLQ(r *http.Request, p auth.Principal) (any, error) {
	f, err := filterOf(r, false)
	if err != nil {
		return nil, err
	}
	q, err := a.queue(r.Context())
	if err != nil {
		return nil, err
	}
	if r.URL.Query().Get("confirm") != "purge" {
		n, err := q.Count(r.Context(), f)
		if err != nil {
			return nil, err
		}
		return nil, problem(http.StatusBadRequest, "Confirmation required",
			fmt.Sprintf("this deletes %d dead letters for good; they cannot be replayed afterwards. Repeat with ?confirm=purge", n))
	}
	n, err := q.Purge(r.Context(), f)
	if err != nil {
		return nil, err
	}
	a.log.Info("dead letters purged", "caller", p.Caller, "consumer", f.Consumer, "count", n)
	return map[string]any{"purged": n}, nil
}
