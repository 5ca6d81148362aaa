package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tradewind/tradewind/internal/retry"
)

var (
	// ErrUnavailable is wrapped by every error that says the provider
	// could not be reached or answered 5xx (after the client's retries), or
	// that the circuit breaker is open: the request may succeed later.
	// The error is an *UnavailableError telling how long to wait.
	ErrUnavailable = errors.New("payment provider unavailable")
	// ErrRefused is wrapped by errors for 4xx answers other than a
	// decline: the request itself is wrong (unknown authorization, invalid
	// state, idempotency key reused); retrying the same request cannot help.
	ErrRefused = errors.New("payment provider refused the request")
)

// UnavailableError says the provider is unavailable and when to try again.
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v (retry in %s): %v", ErrUnavailable, e.RetryAfter, e.Err)
}

// Is makes errors.Is(err, ErrUnavailable) hold.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// maxIdleConns is how many idle connections to the provider a Client
// keeps for reuse: more than the payments participant has in flight.
const maxIdleConns = 64

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the provider, e.g. http://127.0.0.1:8090.
	BaseURL string
	// Timeout bounds one HTTP request.
	Timeout time.Duration
	// Attempts per call while the breaker is closed (≥ 1), with
	// exponential backoff with jitter from Backoff between them.
	Attempts int
	Backoff  time.Duration
	// FailuresToOpen consecutive unavailable answers open the breaker.
	FailuresToOpen uint32
	// Cooldown is how long the breaker stays open before one trial
	// request; callers are told to retry after it.
	Cooldown time.Duration
	// OnStateChange, when set, is told of breaker state changes.
	OnStateChange func(from, to string)
}

func (c *ClientConfig) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = 50 * time.Millisecond
	}
	if c.FailuresToOpen == 0 {
		c.FailuresToOpen = 5
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 5 * time.Second
	}
}

// Client calls the payment provider. Each call is retried with backoff on
// unavailability, every attempt goes through one circuit breaker shared by
// all calls, and while the breaker is open calls fail at once with an
// *UnavailableError whose RetryAfter is the cool-down: the caller (the
// payments handlers) turns that into a delayed redelivery, not a failure.
//
// Idempotency keys make retries safe: a request the provider applied but
// whose answer was lost is answered again, not applied twice.
type Client struct {
	cfg  ClientConfig
	base *url.URL
	http *http.Client
	cb   *gobreaker.CircuitBreaker[*reply]
}

// reply is one HTTP answer.
type reply struct {
	status int
	body   []byte
}

// NewClient validates the configuration.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payment client: base URL %q: want http(s)://host:port", cfg.BaseURL)
	}
	cfg.setDefaults()
	// Its own transport: http.DefaultTransport keeps 2 idle connections
	// per host, and the payments participant has more calls in flight at
	// once (up to 8 per batch, a batch per consumer), so every call past
	// the second dialed a new connection and the provider accepted it:
	// 5 % of serve's CPU went to dialing in a profile at 700 orders/s.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdleConns
	c := &Client{cfg: cfg, base: u, http: &http.Client{Timeout: cfg.Timeout, Transport: tr}}
	c.cb = gobreaker.NewCircuitBreaker[*reply](gobreaker.Settings{
		Name:        "payment-provider",
		MaxRequests: 1,
		Timeout:     cfg.Cooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.FailuresToOpen },
		// Only unavailability counts against the provider; a decline or a
		// refusal is a healthy answer.
		IsSuccessful: func(err error) bool { return err == nil || !errors.Is(err, ErrUnavailable) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(from.String(), to.String())
			}
		},
	})
	return c, nil
}

// BreakerState is "closed", "open" or "half-open".
func (c *Client) BreakerState() string { return c.cb.State().String() }

// Hold is how long a caller should wait before calling: the cool-down
// while the breaker refuses calls (open, or half-open with its one trial
// request taken), 0 while a call would be let through. It is the
// RetryAfter a call would fail with at once, known without calling, so
// that a consumer holds a batch back before doing any work for it
// (runner.Config.Hold). A call may still fail right after a 0: the
// answer is a snapshot.
func (c *Client) Hold() time.Duration {
	switch c.cb.State() { // State first: it moves an expired open breaker to half-open
	case gobreaker.StateOpen:
		return c.cfg.Cooldown
	case gobreaker.StateHalfOpen:
		// The trial is taken when a request got through this half-open
		// spell (MaxRequests is 1); State again: the counts are the
		// current state's, which may have changed in between.
		if n := c.cb.Counts(); n.Requests > n.TotalExclusions && c.cb.State() == gobreaker.StateHalfOpen {
			return c.cfg.Cooldown
		}
	}
	return 0
}

// Authorize asks to hold req.Amount. A decline is not an error: the
// returned authorization has Status StatusDeclined and a DeclineCode.
func (c *Client) Authorize(ctx context.Context, key string, req AuthorizeRequest) (Authorization, error) {
	var a Authorization
	err := c.call(ctx, http.MethodPost, key, "/v1/authorizations", req, &a, http.StatusCreated, http.StatusPaymentRequired)
	return a, err
}

// Authorizations lists what the provider holds for an order (every
// authorization made for it, oldest first, any status). It is how a
// caller finds an authorization whose answer it lost: the request reached
// the provider, but the process died or timed out before recording it.
func (c *Client) Authorizations(ctx context.Context, orderID string) ([]Authorization, error) {
	var l AuthorizationList
	q := url.Values{"order_id": {orderID}}
	err := c.call(ctx, http.MethodGet, "", "/v1/authorizations?"+q.Encode(), nil, &l, http.StatusOK)
	return l.Authorizations, err
}

// Capture captures amount of an authorization.
func (c *Client) Capture(ctx context.Context, key, authorizationID string, amount int64) (Operation, error) {
	var op Operation
	err := c.call(ctx, http.MethodPost, key, "/v1/authorizations/"+url.PathEscape(authorizationID)+"/capture", AmountRequest{Amount: amount}, &op, http.StatusCreated)
	return op, err
}

// Void releases an authorization without charging.
func (c *Client) Void(ctx context.Context, key, authorizationID string) (Operation, error) {
	var op Operation
	err := c.call(ctx, http.MethodPost, key, "/v1/authorizations/"+url.PathEscape(authorizationID)+"/void", struct{}{}, &op, http.StatusCreated)
	return op, err
}

// Refund pays back amount of a captured authorization.
func (c *Client) Refund(ctx context.Context, key, authorizationID string, amount int64) (Operation, error) {
	var op Operation
	err := c.call(ctx, http.MethodPost, key, "/v1/authorizations/"+url.PathEscape(authorizationID)+"/refund", AmountRequest{Amount: amount}, &op, http.StatusCreated)
	return op, err
}

// call sends body to path (a POST with the idempotency key, or a GET with
// no body), retrying while the provider is unavailable and the breaker
// lets requests through. path may carry a query.
func (c *Client) call(ctx context.Context, method, key, path string, body, out any, ok ...int) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("payment client: encode %s: %w", path, err)
		}
	}
	ref, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("payment client: %s %s: %w", method, path, err)
	}
	u := c.base.JoinPath(ref.Path)
	u.RawQuery = ref.RawQuery
	endpoint := u.String()
	var last error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			if !retry.Sleep(ctx, c.backoff().Delay(attempt-1)) {
				return fmt.Errorf("payment client: %s %s: %w", method, path, ctx.Err())
			}
		}
		rep, err := c.cb.Execute(func() (*reply, error) { return c.send(ctx, method, endpoint, key, payload) })
		switch {
		case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
			return &UnavailableError{RetryAfter: c.cfg.Cooldown, Err: fmt.Errorf("%s %s: circuit breaker %s: %w", method, path, c.BreakerState(), err)}
		case errors.Is(err, ErrUnavailable):
			last = err
			if ctx.Err() != nil {
				return fmt.Errorf("payment client: %s %s: %w", method, path, ctx.Err())
			}
			continue
		case err != nil:
			return fmt.Errorf("payment client: %s %s: %w", method, path, err)
		}
		for _, s := range ok {
			if rep.status == s {
				if err := json.Unmarshal(rep.body, out); err != nil {
					return fmt.Errorf("payment client: %s %s: decode %d answer: %w", method, path, rep.status, err)
				}
				return nil
			}
		}
		return fmt.Errorf("payment client: %s %s: %w: %d %s", method, path, ErrRefused, rep.status, problemDetail(rep.body))
	}
	return &UnavailableError{RetryAfter: c.backoff().Window(c.cfg.Attempts), Err: fmt.Errorf("%s %s after %d attempts: %w", method, path, c.cfg.Attempts, last)}
}

// backoff is the delay between attempts: from Backoff, doubling (with
// jitter) up to the last attempt's window.
func (c *Client) backoff() retry.Backoff {
	return retry.Backoff{Base: c.cfg.Backoff, Max: c.cfg.Backoff << (c.cfg.Attempts - 1)}
}

// send does one request. Transport errors, timeouts and 5xx answers are
// unavailability; any other answer is returned.
func (c *Client) send(ctx context.Context, method, endpoint, key string, payload []byte) (*reply, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(HeaderIdempotencyKey, key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnavailableError{Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &UnavailableError{Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode >= 500 {
		return nil, &UnavailableError{Err: fmt.Errorf("%d %s", resp.StatusCode, problemDetail(b))}
	}
	return &reply{status: resp.StatusCode, body: b}, nil
}

func problemDetail(b []byte) string {
	var p Problem
	if json.Unmarshal(b, &p) == nil && p.Title != "" {
		if p.Detail != "" {
			return p.Title + ": " + p.Detail
		}
		return p.Title
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
