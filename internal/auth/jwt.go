package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Issuer is the iss claim of every Tradewind access token.
const Issuer = "tradewind"

// Algorithm is the only signing algorithm accepted (pinned: a token's own
// header never chooses how it is verified).
const Algorithm = "HS256"

// Claims are a verified access token's claims.
type Claims struct {
	Subject   string    // customer id
	Role      string    // RoleCustomer or RoleOps
	ID        string    // jti: the session, what logout revokes
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
}

// Principal is the caller these claims describe.
func (c Claims) Principal() Principal {
	return Principal{Kind: KindUser, Caller: "user:" + c.Subject, Name: c.Subject, Subject: c.Subject, Role: c.Role, TokenID: c.ID}
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// RevocationChecker answers whether a session was revoked. *Revocations
// implements it.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, tokenID string) (bool, error)
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	key         []byte
	maxLifetime time.Duration
	revoked     RevocationChecker
	parser      *jwt.Parser
	now         func() time.Time
}

// NewVerifier builds a verifier for HS256 tokens signed with key (at least
// 32 bytes). Tokens living longer than maxLifetime (exp - iat) are
// refused: revocations are remembered only that long. revoked may be nil
// only in tests that do not need revocation.
func NewVerifier(key []byte, maxLifetime time.Duration, revoked RevocationChecker) (*Verifier, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("auth: the token key must be at least 32 bytes, got %d", len(key))
	}
	if maxLifetime <= 0 {
		return nil, errors.New("auth: the maximum token lifetime must be positive")
	}
	v := &Verifier{key: key, maxLifetime: maxLifetime, revoked: revoked, now: time.Now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithLeeway(5*time.Second),
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
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w", ErrExpired)
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{Subject: tc.Subject, Role: tc.Role, ID: tc.ID}
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
	case c.ExpiresAt.Sub(c.IssuedAt) > v.maxLifetime:
		return Claims{}, fmt.Errorf("%w: lifetime %s exceeds the maximum %s", ErrInvalid, c.ExpiresAt.Sub(c.IssuedAt), v.maxLifetime)
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

// Issue signs a token for a customer (development and tests; a real
// deployment's identity provider issues them with the same key and
// claims). ttl must not exceed the verifier's maximum lifetime.
func Issue(key []byte, subject, role string, ttl time.Duration) (string, Claims, error) {
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
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: subject, ID: c.ID,
			IssuedAt: jwt.NewNumericDate(c.IssuedAt), ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Role: role,
	})
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
