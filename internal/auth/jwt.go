package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Issuer is the iss claim of every Tradewind access token.
const Issuer = "tradewind"

// DefaultAudience is the aud claim of Tradewind's own access tokens unless
// TRADEWIND_JWT_AUDIENCE names another.
const DefaultAudience = "tradewind"

// Algorithm is the only algorithm of Tradewind's own tokens (pinned: a
// token's header only selects between the shared key and the identity
// provider, and each accepts its own algorithms only).
const Algorithm = "HS256"

// leeway is the clock skew tolerated on exp, iat and nbf.
const leeway = 5 * time.Second

// Claims are a verified access token's claims.
type Claims struct {
	Subject   string    // customer id
	Role      string    // RoleCustomer or RoleOps
	ID        string    // jti: the session, what logout revokes
	IssuedAt  time.Time // iat (zero when an identity provider's token has none)
	ExpiresAt time.Time // exp
}

// Principal is the caller these claims describe.
func (c Claims) Principal() Principal {
	return Principal{Kind: KindUser, Caller: "user:" + c.Subject, Name: c.Subject, Subject: c.Subject, Role: c.Role, TokenID: c.ID}
}

// tokenClaims decodes a token's payload: the registered claims, plus the
// raw claims for the role and the identity provider's customer claim.
// exp, iat and nbf must be JSON numbers (RFC 7519 NumericDate): the JWT
// library would also accept a numeric string, which no issuer should send.
type tokenClaims struct {
	jwt.RegisteredClaims
	raw map[string]json.RawMessage
}

func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		if v, ok := raw[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("claim %s must be a NumericDate (a JSON number)", name)
		}
	}
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	c.raw = raw
	return nil
}

func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

// str returns a string claim; present but not a string is an error.
func (c *tokenClaims) str(name string) (string, error) {
	v, ok := c.raw[name]
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("claim %s must be a string", name)
	}
	return s, nil
}

// RevocationChecker answers whether a session was revoked. *Revocations
// implements it.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, tokenID string) (bool, error)
}

// Verifier checks access tokens. It is safe for concurrent use.
//
// Two kinds of tokens are accepted:
//   - Tradewind's own: HS256 with the shared key (or, during a rotation,
//     the previous one), iss "tradewind", aud the configured audience,
//     exp and iat required, sub the customer, role customer or ops, jti
//     the session.
//   - With WithIdentityProvider: the operator's identity provider's,
//     RS256 or ES256 with a key of its JWKS, its issuer and audience; they
//     are customers (see IdentityProvider).
//
// Every accepted token expires within the maximum lifetime, so the
// revocation store, which remembers a revocation that long, covers it.
type Verifier struct {
	keys        [][]byte // the shared key first, then the previous one
	audience    string
	maxLifetime time.Duration
	revoked     RevocationChecker
	idp         *IdentityProvider
	parser      *jwt.Parser
	now         func() time.Time
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithAudience sets the aud Tradewind's own tokens must carry
// (DefaultAudience otherwise).
func WithAudience(aud string) VerifierOption { return func(v *Verifier) { v.audience = aud } }

// WithPreviousKey also accepts tokens signed with the previous shared key,
// while a rotation is under way (docs/security.md).
func WithPreviousKey(key []byte) VerifierOption {
	return func(v *Verifier) {
		if len(key) > 0 {
			v.keys = append(v.keys, key)
		}
	}
}

// WithIdentityProvider also accepts the identity provider's tokens.
func WithIdentityProvider(p *IdentityProvider) VerifierOption {
	return func(v *Verifier) { v.idp = p }
}

// NewVerifier builds a verifier for HS256 tokens signed with key (at least
// 32 bytes; nil when only an identity provider's tokens are accepted).
// Tokens living longer than maxLifetime are refused: revocations are
// remembered only that long. revoked may be nil only in tests that do not
// need revocation.
func NewVerifier(key []byte, maxLifetime time.Duration, revoked RevocationChecker, opts ...VerifierOption) (*Verifier, error) {
	if maxLifetime <= 0 {
		return nil, errors.New("auth: the maximum token lifetime must be positive")
	}
	v := &Verifier{maxLifetime: maxLifetime, revoked: revoked, audience: DefaultAudience, now: time.Now}
	if key != nil {
		v.keys = append(v.keys, key)
	}
	for _, o := range opts {
		o(v)
	}
	for _, k := range v.keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("auth: a token key must be at least 32 bytes, got %d", len(k))
		}
	}
	if key == nil && len(v.keys) > 0 {
		return nil, errors.New("auth: a previous token key needs the current one")
	}
	if len(v.keys) == 0 && v.idp == nil {
		return nil, errors.New("auth: a token key or an identity provider is required")
	}
	if strings.TrimSpace(v.audience) == "" {
		return nil, errors.New("auth: the token audience must not be empty")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(v.audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

var (
	subjectRE = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`)
	jtiRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// Verify checks a token and returns its claims. Errors wrap exactly one of
// ErrInvalid, ErrExpired, ErrRevoked or ErrUnavailable (the revocation
// store cannot answer: fail closed).
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	var c Claims
	var err error
	switch alg := headerAlg(token); {
	case alg == Algorithm && len(v.keys) > 0:
		c, err = v.verifyShared(token)
	case alg == Algorithm:
		return Claims{}, fmt.Errorf("%w: no shared token key is configured", ErrInvalid)
	case v.idp != nil && v.idp.accepts(alg):
		c, err = v.idp.verify(ctx, token)
	default:
		return Claims{}, fmt.Errorf("%w: algorithm %q is not accepted", ErrInvalid, alg)
	}
	if err != nil {
		return Claims{}, err
	}
	switch {
	case !c.IssuedAt.IsZero() && c.ExpiresAt.Sub(c.IssuedAt) > v.maxLifetime:
		return Claims{}, fmt.Errorf("%w: lifetime %s exceeds the maximum %s", ErrInvalid, c.ExpiresAt.Sub(c.IssuedAt), v.maxLifetime)
	case c.ExpiresAt.Sub(v.now()) > v.maxLifetime+leeway:
		return Claims{}, fmt.Errorf("%w: expires beyond the maximum lifetime %s", ErrInvalid, v.maxLifetime)
	}
	if v.revoked != nil {
		revoked, err := v.revoked.IsRevoked(ctx, c.ID)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if revoked {
			return Claims{}, fmt.Errorf("%w: session %s", ErrRevoked, c.ID)
		}
	}
	return c, nil
}

// verifyShared checks one of Tradewind's own HS256 tokens.
func (v *Verifier) verifyShared(token string) (Claims, error) {
	var tc tokenClaims
	keys := jwt.VerificationKeySet{}
	for _, k := range v.keys {
		keys.Keys = append(keys.Keys, k)
	}
	_, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return keys, nil })
	if err := parseError(err); err != nil {
		return Claims{}, err
	}
	role, err := tc.str("role")
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{Subject: tc.Subject, Role: role, ID: tc.ID}
	if c.Role == "" {
		c.Role = RoleCustomer
	}
	if tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no iat claim", ErrInvalid)
	}
	c.IssuedAt, c.ExpiresAt = tc.IssuedAt.Time, tc.ExpiresAt.Time
	switch {
	case !subjectRE.MatchString(c.Subject):
		return Claims{}, fmt.Errorf("%w: sub must be a customer id of 1..64 printable characters", ErrInvalid)
	case !jtiRE.MatchString(c.ID):
		return Claims{}, fmt.Errorf("%w: jti must be 1..128 characters of [A-Za-z0-9_-]", ErrInvalid)
	case c.Role != RoleCustomer && c.Role != RoleOps:
		return Claims{}, fmt.Errorf("%w: unknown role %q", ErrInvalid, c.Role)
	}
	return c, nil
}

// parseError maps the JWT library's errors to ErrExpired or ErrInvalid.
func parseError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w", ErrExpired)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// headerAlg reads the alg of a token's header without trusting it: it
// only selects which verification applies, each pinned to its own
// algorithms and keys.
func headerAlg(token string) string {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// sessionID derives a session id that fits jtiRE from an external token's
// issuer and jti (or, without a jti, the token itself), so that logout can
// revoke it and it never collides with Tradewind's own jti values.
func sessionID(issuer, jti, token string) string {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	if jti != "" {
		h.Write([]byte(jti))
	} else {
		h.Write([]byte(token))
	}
	return "idp-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// IssueOption configures Issue.
type IssueOption func(*jwt.RegisteredClaims)

// ForAudience sets the token's aud (DefaultAudience otherwise); it must be
// the verifiers' TRADEWIND_JWT_AUDIENCE.
func ForAudience(aud string) IssueOption {
	return func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{aud} }
}

// Issue signs a token for a customer (development, tests and operators'
// tokens; a shop's users may come from its identity provider instead).
// ttl must not exceed the verifier's maximum lifetime.
func Issue(key []byte, subject, role string, ttl time.Duration, opts ...IssueOption) (string, Claims, error) {
	if len(key) < 32 {
		return "", Claims{}, fmt.Errorf("issue token: the key must be at least 32 bytes, got %d", len(key))
	}
	if !subjectRE.MatchString(subject) {
		return "", Claims{}, fmt.Errorf("issue token: the user must be a customer id of 1..64 printable characters, got %q", subject)
	}
	if role != RoleCustomer && role != RoleOps {
		return "", Claims{}, fmt.Errorf("issue token: role must be %s or %s, got %q", RoleCustomer, RoleOps, role)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	c := Claims{Subject: subject, Role: role, ID: id.String(), IssuedAt: now, ExpiresAt: now.Add(ttl)}
	rc := jwt.RegisteredClaims{
		Issuer: Issuer, Subject: subject, ID: c.ID, Audience: jwt.ClaimStrings{DefaultAudience},
		IssuedAt: jwt.NewNumericDate(c.IssuedAt), ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
	}
	for _, o := range opts {
		o(&rc)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, struct {
		jwt.RegisteredClaims
		Role string `json:"role"`
	}{rc, role})
	s, err := tok.SignedString(key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", err)
	}
	return s, c, nil
}

// DevSecretFile holds the development token key under the data directory.
const DevSecretFile = "jwt-dev.key"

// DevSecret returns the development token key of a data directory,
// creating it (32 random bytes, owner-only) on first use. `serve` and
// `tradewind token` share it when TRADEWIND_JWT_SECRET is unset; it is for
// development only.
func DevSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, DevSecretFile)
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("development token key: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("development token key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race
		if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
			return b, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("development token key %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return nil, fmt.Errorf("development token key %s: %w", path, err)
	}
	return b, nil
}

// SigningKey is the token key of a deployment: the configured secret
// (TRADEWIND_JWT_SECRET), else the data directory's development key.
// Every instance that verifies tokens (gateway, WebSockets) must use it.
func SigningKey(secret, dataDir string) (key []byte, development bool, err error) {
	if secret != "" {
		return []byte(secret), false, nil
	}
	key, err = DevSecret(dataDir)
	return key, true, err
}
