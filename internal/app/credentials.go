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
//
// Invariant: only in development mode (config.Development) without a
// configured secret is a token key generated and Development true, the
// one case in which the api role prints an all-scope API key. In
// production mode nothing is generated or printed: tokens verify with the
// configured shared secret (the same on every replica) and, when
// configured, the identity provider's JWKS.
type Credentials struct {
	Keys *auth.Keys
	// Signing is the shared HS256 key; nil in production when only the
	// identity provider's tokens are accepted.
	Signing     []byte
	Development bool // the signing key is the generated development key
	Revocations *auth.Revocations
	Verifier    *auth.Verifier
	idp         *auth.IdentityProvider
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

// closeCredentials stops what Credentials started (the identity
// provider's key set refresh). Call it once the roles have stopped.
func (d *Deps) closeCredentials() {
	if c := d.creds.c; c != nil && c.idp != nil {
		c.idp.Close()
	}
}

func newCredentials(ctx context.Context, d *Deps) (*Credentials, error) {
	cfg := d.Cfg
	keys, err := auth.NewKeys(d.Pool)
	if err != nil {
		return nil, err
	}
	secrets, err := cfg.TokenSecrets()
	if err != nil {
		return nil, err
	}
	signing, development := secrets.Current, false
	switch {
	case signing != nil:
	case cfg.Development():
		if signing, err = auth.DevSecret(cfg.DataDir); err != nil {
			return nil, err
		}
		development = true
	case cfg.IDPJWKSURL == "":
		// Validate refuses this configuration; never fall back to a
		// generated key outside development.
		return nil, errors.New("production mode: no token credentials (set TRADEWIND_JWT_SECRET_FILE, TRADEWIND_JWT_SECRET or TRADEWIND_IDP_JWKS_URL, or run with --dev)")
	}
	audience := cfg.JWTAudience
	if audience == "" {
		audience = auth.DefaultAudience
	}
	opts := []auth.VerifierOption{auth.WithAudience(audience), auth.WithPreviousKey(secrets.Previous)}
	var idp *auth.IdentityProvider
	if cfg.IDPJWKSURL != "" {
		idp, err = auth.NewIdentityProvider(auth.IdentityProviderConfig{
			JWKSURL: cfg.IDPJWKSURL, Issuer: cfg.IDPIssuer, Audience: cfg.IDPAudience,
			CustomerClaim: cfg.IDPCustomerClaim, Refresh: cfg.IDPJWKSRefresh, Log: d.Log,
		})
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth.WithIdentityProvider(idp))
	}
	closeIDP := func() {
		if idp != nil {
			idp.Close()
		}
	}
	revocations, err := auth.NewRevocations(ctx, d.JS, cfg.Replicas, cfg.TokenMaxLifetime)
	if err != nil {
		closeIDP()
		return nil, fmt.Errorf("session revocations: %w", err)
	}
	verifier, err := auth.NewVerifier(signing, cfg.TokenMaxLifetime, revocations, opts...)
	if err != nil {
		closeIDP()
		return nil, err
	}
	if d.Log != nil { // what is trusted, never a key
		mode, hs256 := "production", "configured"
		switch {
		case cfg.Development() && development:
			mode, hs256 = "development", "generated in the data directory"
		case cfg.Development():
			mode = "development"
		case signing == nil:
			hs256 = "none"
		}
		d.Log.Info("user tokens", "mode", mode, "hs256_key", hs256, "hs256_previous_key", secrets.Previous != nil,
			"audience", audience, "idp_issuer", cfg.IDPIssuer)
	}
	return &Credentials{Keys: keys, Signing: signing, Development: development, Revocations: revocations, Verifier: verifier, idp: idp,
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
	if ok, wait := c.Failures.Allow(client); !ok {
		return auth.Principal{}, auth.ThrottledError{Wait: wait}
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

// ReadCaller adapts Principal to the read API's CallerFrom: a throttled
// client's error carries RetryAfter, a credential store that cannot be
// reached is readapi.ErrAuthUnavailable.
func (c *Credentials) ReadCaller(r *http.Request) (readapi.Caller, error) {
	p, err := c.Principal(r)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return nil, fmt.Errorf("%w: %w", readapi.ErrAuthUnavailable, err)
	case err != nil:
		return nil, err
	}
	return readCaller{p}, nil
}
