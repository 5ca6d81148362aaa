package auth

import (
	"errors"
	"sync"
	"time"
)

// ErrThrottled: the client failed to authenticate too often recently; its
// credentials were not checked (answer 429 with Retry-After).
var ErrThrottled = errors.New("too many failed authentications")

// ThrottledError is ErrThrottled with the time until the client may try
// again.
type ThrottledError struct{ Wait time.Duration }

func (e ThrottledError) Error() string             { return ErrThrottled.Error() }
func (e ThrottledError) Is(target error) bool      { return target == ErrThrottled }
func (e ThrottledError) RetryAfter() time.Duration { return e.Wait }

// Throttle limits failed authentications per client (the gateway keys it
// by remote IP): each client has a bucket of Burst failures refilled at
// one per Every. While the bucket is empty the client's credentials are
// not even checked, so guessing keys costs the guesser, not the database.
// Successful authentications cost nothing. It is per process: N instances
// admit at most N times the burst, which bounds guessing just as well.
type Throttle struct {
	Burst int           // failures admitted in a row (default 20)
	Every time.Duration // one failure more per Every (default 3s)

	mu      sync.Mutex
	clients map[string]*failures
	now     func() time.Time
}

type failures struct {
	tokens float64
	at     time.Time
}

// maxThrottled bounds the memory the throttle holds; past it, buckets that
// have refilled are forgotten, and if none has, all are (a flood of
// distinct clients then meets fresh buckets, never an unbounded map).
const maxThrottled = 100_000

// NewThrottle returns a throttle with the default limits.
func NewThrottle() *Throttle {
	return &Throttle{Burst: 20, Every: 3 * time.Second}
}

func (t *Throttle) bucket(client string, now time.Time) *failures {
	if t.clients == nil {
		t.clients = map[string]*failures{}
	}
	b, ok := t.clients[client]
	if !ok {
		if len(t.clients) >= maxThrottled {
			t.forget(now)
		}
		b = &failures{tokens: float64(t.Burst), at: now}
		t.clients[client] = b
		return b
	}
	if t.Every > 0 {
		b.tokens = min(float64(t.Burst), b.tokens+float64(now.Sub(b.at))/float64(t.Every))
	}
	b.at = now
	return b
}

func (t *Throttle) forget(now time.Time) {
	for c, b := range t.clients {
		if b.tokens+float64(now.Sub(b.at))/float64(t.Every) >= float64(t.Burst) {
			delete(t.clients, c)
		}
	}
	if len(t.clients) >= maxThrottled {
		clear(t.clients)
	}
}

func (t *Throttle) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Allow reports whether client may try to authenticate; when not, it also
// says how long until it may.
func (t *Throttle) Allow(client string) (bool, time.Duration) {
	if t == nil || t.Burst <= 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(client, t.clock())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(t.Every))
}

// Fail records a failed authentication of client.
func (t *Throttle) Fail(client string) {
	if t == nil || t.Burst <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(client, t.clock())
	b.tokens = max(0, b.tokens-1)
}
