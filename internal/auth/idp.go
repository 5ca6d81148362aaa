package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// IdentityProviderAlgorithms are the algorithms accepted from an identity
// provider; the key is always one of its JWKS, never the shared HS256 key.
var IdentityProviderAlgorithms = []string{"RS256", "ES256"}

// IdentityProviderConfig says whose user tokens to accept besides
// Tradewind's own.
type IdentityProviderConfig struct {
	// JWKSURL serves the provider's public keys (RFC 7517 key set).
	JWKSURL string
	// Issuer and Audience must match the token's iss and aud exactly.
	Issuer, Audience string
	// CustomerClaim names the top-level string claim that holds the
	// customer id ("sub" when empty).
	CustomerClaim string
	// Refresh is how often the key set is fetched again (15m when zero).
	Refresh time.Duration
	// UnknownKeyInterval bounds refetches caused by a token with an
	// unknown kid (a rotation): at most one per interval (10s when zero),
	// so forged kids cannot make Tradewind hammer the provider.
	UnknownKeyInterval time.Duration
	// HTTPClient fetches the key set (a 10s timeout when nil).
	HTTPClient *http.Client
	// Log receives failed refreshes (slog.Default when nil).
	Log *slog.Logger
}

// IdentityProvider verifies the RS256/ES256 tokens of the operator's
// identity provider against its JWKS: the key set is cached, refreshed
// every Refresh and at once (rate-limited) when a token names an unknown
// key id, so a key rotation at the provider needs no restart; a key the
// provider dropped stops verifying after the next refresh.
//
// Its tokens are customers' (role customer): operators use Tradewind's own
// tokens or API keys. The session id that logout revokes is derived from
// the issuer and the token's jti (or the token, without one).
//
// The key set is handled by github.com/MicahParks/keyfunc/v3 (over
// github.com/MicahParks/jwkset), the JWKS companion of the JWT library
// Tradewind already uses.
type IdentityProvider struct {
	cfg    IdentityProviderConfig
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
	cancel context.CancelFunc
}

// NewIdentityProvider fetches the key set once (a failure is logged, not
// returned: the provider may be briefly down, and the next token with a
// kid fetches again) and starts the periodic refresh until Close.
func NewIdentityProvider(cfg IdentityProviderConfig) (*IdentityProvider, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("identity provider: JWKS URL %q: want https://host/path", cfg.JWKSURL)
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("identity provider: the issuer and the audience are required")
	}
	if cfg.CustomerClaim == "" {
		cfg.CustomerClaim = "sub"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 15 * time.Minute
	}
	if cfg.UnknownKeyInterval <= 0 {
		cfg.UnknownKeyInterval = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	where := u.Redacted()
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:            cfg.HTTPClient,
		HTTPTimeout:       10 * time.Second,
		RefreshInterval:   cfg.Refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.UnknownKeyInterval), 1),
		// Also bounds the refetch itself; a request never waits longer.
		RateLimitWaitMax: 5 * time.Second,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				cfg.Log.Warn("identity provider key set not refreshed; the cached keys stay in use", "jwks_url", where, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("identity provider %s: %w", where, err)
	}
	p := &IdentityProvider{cfg: cfg, keys: kf, cancel: cancel}
	p.parser = jwt.NewParser(
		jwt.WithValidMethods(IdentityProviderAlgorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(leeway),
	)
	return p, nil
}

// Close stops the periodic refresh.
func (p *IdentityProvider) Close() { p.cancel() }

func (p *IdentityProvider) accepts(alg string) bool {
	return slices.Contains(IdentityProviderAlgorithms, alg)
}

// verify checks one of the provider's tokens.
func (p *IdentityProvider) verify(ctx context.Context, token string) (Claims, error) {
	var tc tokenClaims
	_, err := p.parser.ParseWithClaims(token, &tc, p.keys.KeyfuncCtx(ctx))
	if err := parseError(err); err != nil {
		return Claims{}, err
	}
	customer, err := tc.str(p.cfg.CustomerClaim)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !subjectRE.MatchString(customer) {
		return Claims{}, fmt.Errorf("%w: claim %s must be a customer id of 1..64 printable characters", ErrInvalid, p.cfg.CustomerClaim)
	}
	c := Claims{Subject: customer, Role: RoleCustomer, ID: sessionID(tc.Issuer, strings.TrimSpace(tc.ID), token), ExpiresAt: tc.ExpiresAt.Time}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c, nil
}
