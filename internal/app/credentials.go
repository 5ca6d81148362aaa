package app

import (
	"context"
	"fmt"
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
	return &Credentials{Keys: keys, Signing: signing, Development: development, Revocations: revocations, Verifier: verifier}, nil
}

// Principal authenticates "Authorization: Bearer <API key or token>".
func (c *Credentials) Principal(r *http.Request) (auth.Principal, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return auth.Principal{}, fmt.Errorf("%w: no bearer credentials", auth.ErrInvalid)
	}
	if auth.IsAPIKey(tok) {
		return c.Keys.Authenticate(r.Context(), tok)
	}
	claims, err := c.Verifier.Verify(r.Context(), tok)
	if err != nil {
		return auth.Principal{}, err
	}
	return claims.Principal(), nil
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
