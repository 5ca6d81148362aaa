package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/readapi"
)

// Credentials are the authentication pieces every HTTP-facing role of a
// process shares: API keys, the token signing key and verifier, and the
// session revocation store (NATS KV, so a logout is seen by every instance).
type Credentials struct {
	Keys        *auth.Keys
	Signing     []byte
	Development bool // the signing key is the generated development key
	Revocations *auth.Revocations
	Verifier    *auth.Verifier
	// Failures throttles failed authentications per client IP, for the
	// gateway and the read API together.
	Failures *auth.Throttle
}

type credentialsOnce struct {
	once sync.Once
	c    *Credentials
	err  error
}

// Credentials builds the process's credentials on first use.
func (d *Deps) Credentials() (*Credentials, error) {
	d.creds.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.creds.c, d.creds.err = newCredentials(ctx, d)
	})
	return d.creds.c, d.creds.err
}

func newCredentials(ctx context.Context, d *Deps) (*Credentials, error) {
	keys, err := auth.NewKeys(d.Pool)
	if err != nil {
		return nil, err
	}
	signing, development, err := auth.SigningKey(d.Cfg.JWTSecret, d.Cfg.DataDir)
	if err != nil {
		return nil, err
	}
	revocations, err := auth.NewRevocations(ctx, d.JS, d.Cfg.Replicas, d.Cfg.TokenMaxLifetime)
	if err != nil {
		return nil, fmt.Errorf("session revocations: %w", err)
	}
	verifier, err := auth.NewVerifier(signing, d.Cfg.TokenMaxLifetime, revocations)
	if err != nil {
		return nil, err
	}
	return &Credentials{Keys: keys, Signing: signing, Development: development, Revocations: revocations, Verifier: verifier,
		Failures: auth.NewThrottle()}, nil
}

// Principal authenticates "Authorization: Bearer <API key or token>". A
// client (remote IP) that failed too often recently gets ErrThrottled and
// its credentials are not checked.
func (c *Credentials) Principal(r *http.Request) (auth.Principal, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return auth.Principal{}, fmt.Errorf("%w: no bearer credentials", auth.ErrInvalid)
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	if ok, _ := c.Failures.Allow(client); !ok {
		return auth.Principal{}, auth.ErrThrottled
	}
	var p auth.Principal
	if auth.IsAPIKey(tok) {
		p, err = c.Keys.Authenticate(r.Context(), tok)
	} else {
		var claims auth.Claims
		claims, err = c.Verifier.Verify(r.Context(), tok)
		p = claims.Principal()
	}
	if err != nil && !errors.Is(err, auth.ErrUnavailable) {
		c.Failures.Fail(client)
	}
	return p, err
}

// readCaller is a principal as the read API sees it: a browser user reads
// their own data, an operator reads all; an API key reads the kinds of
// data its read scopes (orders:read, customers:read, analytics:read, or
// "*") name, and nothing else.
type readCaller struct{ p auth.Principal }

func (c readCaller) CustomerID() string { return c.p.Subject }
func (c readCaller) ReadsAll(scope string) bool {
	if c.p.Kind == auth.KindUser {
		return c.p.Role == auth.RoleOps
	}
	return c.p.Can(scope)
}

// ReadCaller adapts Principal to the read API's CallerFrom.
func (c *Credentials) ReadCaller(r *http.Request) (readapi.Caller, bool) {
	p, err := c.Principal(r)
	if err != nil {
		return nil, false
	}
	return readCaller{p}, true
}
