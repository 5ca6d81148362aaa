package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/idempotency"
)

// commandRoute describes one command endpoint; the table of them is
// commands (routes.go).
type commandRoute struct {
	pattern string // e.g. "POST /v1/orders"
	summary string
	scope   string
	class   string         // rate-limit route class
	types   map[int]string // schema version → CloudEvent type
	// deprecated versions, with their Sunset date (an HTTP-date).
	deprecated map[int]deprecation
	emptyOK    bool // an empty body reads as {} (path-only commands)
	// doc is added to the operation's description in the OpenAPI document
	// (rules of the route the schema cannot say).
	doc string
	// prepare completes the command's data (path parameters, ids the
	// gateway assigns), checks what the caller may do, and names the
	// aggregate and its read model. fromPath maps body pointers filled
	// from the URL to the parameter, for error messages.
	prepare preparer
}

type deprecation struct {
	Since  int64  // Unix time the successor shipped (Deprecation: @<since>)
	Sunset string // HTTP-date after which the version may be refused
	Link   string // the successor's documentation
}

type target struct {
	aggregateID string
	location    string
	fromPath    map[string]string
}

func (c *commandRoute) versions() []int {
	var vs []int
	for v := range c.types {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Accepted is the body of a 202 answer.
type Accepted struct {
	Status    string `json:"status"`     // always "accepted"
	ID        string `json:"id"`         // the aggregate id
	CommandID string `json:"command_id"` // the CloudEvent id
	Type      string `json:"type"`       // the CloudEvent type published
	Position  string `json:"position"`   // read-your-writes token
	Location  string `json:"location"`   // the read model
}

// commandNamespace derives command ids from (caller, key, request).
var commandNamespace = uuid.MustParse("2b6e0f7c-3c52-4d0e-8f0a-7d5b1c9e4a61")

// aggregateNamespace derives aggregate ids the gateway assigns.
var aggregateNamespace = uuid.MustParse("9a3d2f4e-61b7-4c8a-b0e5-3f2c7d1a8e90")

// CommandID is the id of the command a request publishes: the same
// caller, key and request always give the same id.
func CommandID(caller, key string, requestHash [32]byte) string {
	return uuid.NewSHA1(commandNamespace, []byte(caller+"\x00"+key+"\x00"+string(requestHash[:]))).String()
}

var idemKeyRE = func(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) command(c *commandRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, ok := s.allowed(w, r, c.scope)
		if !ok {
			return
		}
		version, prob := negotiate(r, c)
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		if !s.allow(w, r, p, c.class) {
			return
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		if !idemKeyRE(key) {
			writeProblem(w, r, problem(http.StatusBadRequest, "idempotency-key-required", "Idempotency-Key required",
				"send an Idempotency-Key header of 1..255 printable ASCII characters, unique per command").header(HeaderIdempotencyKey))
			return
		}
		body, prob := readBody(w, r, s.cfg.BodyLimit, c.emptyOK)
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		doc, prob := parseObject(body)
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		ceType := c.types[version]
		hash := idempotency.Hash([]byte(r.Method), []byte(r.URL.Path), []byte(ceType), body)
		cmdID := CommandID(p.Caller, key, hash)
		tgt, prob := c.prepare(ctx, s, r, p, doc, cmdID)
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		if prob := validate(ceType, doc, tgt.fromPath); prob != nil {
			writeProblem(w, r, prob)
			return
		}
		data, err := json.Marshal(doc)
		if err != nil {
			writeProblem(w, r, problem(http.StatusBadRequest, "malformed-body", "Malformed request body", err.Error()))
			return
		}
		if !s.d.Publisher.Connected() {
			writeProblem(w, r, unavailable("the message broker is unreachable; the command was not accepted"))
			return
		}
		claim, replay, err := s.d.Idempotency.Begin(ctx, idempotency.Request{Caller: p.Caller, Key: key, Hash: hash})
		switch {
		case errors.Is(err, idempotency.ErrInFlight):
			writeProblem(w, r, problem(http.StatusConflict, "idempotency-in-flight", "Request in progress",
				"a request with this Idempotency-Key is still being processed; retry shortly").header(HeaderIdempotencyKey).retry(1))
			return
		case errors.Is(err, idempotency.ErrMismatch):
			writeProblem(w, r, problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
				"this Idempotency-Key was used for a different request; use a new key for a new command").header(HeaderIdempotencyKey))
			return
		case err != nil:
			s.log.Warn("idempotency store failed", "request_id", requestIDFrom(ctx), "err", err)
			writeProblem(w, r, unavailable("the idempotency store is unavailable; the command was not accepted"))
			return
		case replay != nil:
			writeReplay(w, replay)
			return
		}
		// From here the outcome must be recorded even if the client leaves.
		ctx = context.WithoutCancel(ctx)
		opts := []events.Option{
			events.WithID(cmdID),
			events.WithSource("/tradewind/api/" + url.PathEscape(p.Caller)),
			events.WithCorrelation(correlationIDFrom(ctx)),
			events.WithTraceparent(traceparentFrom(ctx)),
		}
		ev, err := events.New(ceType, tgt.aggregateID, json.RawMessage(data), opts...)
		if err != nil {
			_ = s.d.Idempotency.Release(ctx, claim)
			panic(fmt.Sprintf("build command %s: %v", ceType, err)) // a catalogue bug: 500
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		ack, err := s.d.Publisher.Publish(pctx, ev)
		cancel()
		if err != nil {
			// Not acknowledged: maybe stored, maybe not. Forget the claim so
			// the retry runs again; its id is the same, so it cannot double.
			if rerr := s.d.Idempotency.Release(ctx, claim); rerr != nil {
				s.log.Warn("release idempotency key", "request_id", requestIDFrom(ctx), "err", rerr)
			}
			s.log.Warn("command not acknowledged", "request_id", requestIDFrom(ctx), "command_id", cmdID, "type", ceType, "err", err)
			writeProblem(w, r, unavailable("the message broker did not acknowledge the command; retry with the same Idempotency-Key"))
			return
		}
		resp := accepted(c, version, ceType, cmdID, tgt, ack.Stream, ack.Sequence)
		if err := s.d.Idempotency.Complete(ctx, claim, resp); err != nil {
			// The command is durable: answer 202 anyway. A retry finds the
			// claim in flight (409) until its lease ends, then republishes
			// the same id, which the broker and inboxes drop.
			s.log.Warn("store idempotent response", "request_id", requestIDFrom(ctx), "err", err)
		}
		writeResponse(w, resp)
	})
}

func unavailable(detail string) *Problem {
	return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", detail).retry(1)
}

// accepted builds the 202 answer (stored for replay, so it holds nothing
// that differs between attempts).
func accepted(c *commandRoute, version int, ceType, cmdID string, tgt target, stream string, seq uint64) idempotency.Response {
	pos := stream + ":" + strconv.FormatUint(seq, 10)
	body, _ := json.Marshal(Accepted{Status: "accepted", ID: tgt.aggregateID, CommandID: cmdID, Type: ceType, Position: pos, Location: tgt.location})
	// The names are canonical already (constants): no Set needed.
	h := http.Header{
		"Content-Type":      {"application/json"},
		"Location":          {tgt.location},
		HeaderPosition:      {pos},
		HeaderSchemaVersion: {strconv.Itoa(version)},
	}
	if d, ok := c.deprecated[version]; ok {
		h.Set("Deprecation", "@"+strconv.FormatInt(d.Since, 10))
		h.Set("Sunset", d.Sunset)
		h.Set("Link", "<"+d.Link+`>; rel="successor-version"`)
	}
	return idempotency.Response{Status: http.StatusAccepted, Header: h, Body: append(body, '\n')}
}

func writeResponse(w http.ResponseWriter, resp idempotency.Response) {
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

func writeReplay(w http.ResponseWriter, resp *idempotency.Response) {
	w.Header().Set(HeaderReplayed, "true")
	writeResponse(w, *resp)
}

// negotiate picks the schema version: Accept-Version ("2", "v2"), else
// the newest. The response must be JSON (Accept).
func negotiate(r *http.Request, c *commandRoute) (int, *Problem) {
	if acc := r.Header.Get("Accept"); acc != "" && !acceptsJSON(acc) {
		return 0, problem(http.StatusNotAcceptable, "not-acceptable", "Not acceptable",
			"responses are application/json or application/problem+json").header("Accept")
	}
	vs := c.versions()
	raw := strings.TrimSpace(r.Header.Get(HeaderAcceptVersion))
	if raw == "" {
		return vs[len(vs)-1], nil
	}
	v, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(raw), "v"))
	if _, ok := c.types[v]; err != nil || !ok {
		p := problem(http.StatusBadRequest, "unsupported-version", "Unsupported schema version",
			fmt.Sprintf("Accept-Version %q is not a version of this command", raw)).header(HeaderAcceptVersion)
		p.Versions = vs
		return 0, p
	}
	return v, nil
}

func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		switch mt {
		case "*/*", "application/*", "application/json", "application/problem+json":
			return true
		}
	}
	return false
}

// authenticate reads "Authorization: Bearer <API key or JWT>".
// signedIn authenticates r and records its caller for the access log; on
// failure it writes the problem (401) and returns false.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, prob := s.authenticate(r)
	if prob != nil {
		writeProblem(w, r, prob)
		return p, false
	}
	setCaller(r.Context(), p.Caller)
	return p, true
}

// allowed is signedIn for a caller that must hold scope (403 otherwise).
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, scope string) (auth.Principal, bool) {
	p, ok := s.signedIn(w, r)
	if ok && !p.Can(scope) {
		writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
			fmt.Sprintf("this caller lacks the %s scope", scope)))
		return p, false
	}
	return p, ok
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, *Problem) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		p := problem(http.StatusUnauthorized, "unauthenticated", "Authentication required",
			"send Authorization: Bearer <API key or access token>").header("Authorization")
		return auth.Principal{}, p
	}
	tok = strings.TrimSpace(tok)
	client := clientIP(r)
	if ok, wait := s.d.Failures.Allow(client); !ok {
		return auth.Principal{}, problem(http.StatusTooManyRequests, "rate-limited", "Too many failed authentications",
			"this client failed to authenticate too often; the credentials were not checked").retry(max(1, ceilSeconds(wait.Seconds())))
	}
	var (
		p   auth.Principal
		err error
	)
	if auth.IsAPIKey(tok) {
		p, err = s.d.Keys.Authenticate(r.Context(), tok)
	} else {
		var c auth.Claims
		c, err = s.d.Tokens.Verify(r.Context(), tok)
		p = c.Principal()
	}
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, auth.ErrUnavailable):
		s.log.Warn("credential store unavailable", "request_id", requestIDFrom(r.Context()), "err", err)
		return p, unavailable("credentials cannot be checked right now")
	}
	s.d.Failures.Fail(client)
	detail, code := "the credentials are not valid", "invalid_token"
	switch {
	case errors.Is(err, auth.ErrExpired):
		detail = "the access token has expired"
	case errors.Is(err, auth.ErrRevoked):
		detail = "the credentials were revoked"
	}
	prob := problem(http.StatusUnauthorized, "unauthenticated", "Authentication failed", detail).header("Authorization")
	prob.authError = code
	return p, prob
}

// clientIP is the address failed authentications are counted against:
// the connection's remote IP (forwarding headers are not trusted: anyone
// can send them).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allow applies the shared rate limit and sets the RateLimit headers.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, p auth.Principal, class string) bool {
	lim := s.cfg.Limit
	if p.RatePerSecond > 0 && p.Burst > 0 {
		lim.Rate, lim.Burst = p.RatePerSecond, p.Burst
	}
	d := s.d.Limiter.Allow(r.Context(), p.Caller+"|"+class, lim)
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(lim.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset.Seconds())))
	h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", lim.Burst, max(1, ceilSeconds(float64(lim.Burst)/lim.Rate))))
	if d.Allowed {
		return true
	}
	writeProblem(w, r, problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("the limit for %s commands is %g per second with bursts of %d", class, lim.Rate, lim.Burst)).
		retry(max(1, ceilSeconds(d.RetryAfter.Seconds()))))
	return false
}

func ceilSeconds(s float64) int { return int(math.Ceil(s)) }
