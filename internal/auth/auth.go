// Package auth authenticates the gateway's callers.
//
//   - Producer services present API keys ("Authorization: Bearer tw_…").
//     Keys are stored hashed (Keys) and carry scopes naming the commands a
//     key may send, and optionally their own rate limits.
//   - Browser users present JWT access tokens (Verifier): Tradewind's own,
//     HS256 with the key every replica shares (plus the previous key while
//     a rotation is under way), iss "tradewind", aud the configured
//     audience, exp and iat required as JSON numbers, sub = customer id, a
//     role claim ("customer", or "ops" for operators), jti = the session;
//     or, when configured, the shop's identity provider's: RS256/ES256
//     with a key of its JWKS (cached, refetched on an unknown kid), its
//     issuer and audience, the customer in a configurable claim
//     (IdentityProvider). Each kind accepts only its own algorithms and
//     keys; any other algorithm, "none" included, is refused.
//   - Sessions are revocable across instances: logout puts the token's jti
//     into a NATS KV bucket (Revocations) that every gateway and WebSocket
//     instance consults on every verification; entries expire when the
//     longest accepted token would have.
//
// Principal is what the rest of the gateway sees of a caller.
package auth

import (
	"errors"
	"slices"
)

// Scopes a caller may hold. A scope names a context's commands.
const (
	ScopeOrdersWrite    = "orders:write"
	ScopeCatalogWrite   = "catalog:write"
	ScopeInventoryWrite = "inventory:write"
	ScopeCustomersWrite = "customers:write"
	// ScopeOrdersPrice lets an API key send its own unit prices with
	// orders (B2B: negotiated prices); without it the gateway prices every
	// line from the catalog. Only API keys can hold it (or "*"): user
	// tokens never do, operators included.
	ScopeOrdersPrice = "orders:price"
	ScopeAll         = "*"
)

// KnownScopes lists every scope a key can be given.
var KnownScopes = []string{ScopeOrdersWrite, ScopeOrdersPrice, ScopeCatalogWrite, ScopeInventoryWrite, ScopeCustomersWrite, ScopeAll}

// Roles of user tokens.
const (
	RoleCustomer = "customer"
	RoleOps      = "ops"
)

// Kind tells how a caller authenticated.
type Kind int

const (
	// KindAPIKey is a producer service with an API key.
	KindAPIKey Kind = iota + 1
	// KindUser is a browser user with a JWT access token.
	KindUser
)

// Principal is an authenticated caller.
type Principal struct {
	Kind Kind
	// Caller identifies the caller for idempotency keys and rate limits:
	// "key:<key id>" or "user:<customer id>". Stable across requests.
	Caller string
	// Name is the key's name, or the user's customer id.
	Name string
	// Subject is the customer id of a user ("" for API keys).
	Subject string
	// Role is the user's role ("" for API keys).
	Role   string
	Scopes []string
	// RatePerSecond and Burst override the default limits when non-zero.
	RatePerSecond float64
	Burst         int
	// TokenID is the user token's jti (the session), for logout.
	TokenID string
}

// Can reports whether the principal holds scope. Operators hold every
// scope but orders:price; customers hold orders:write only, for their own
// orders (callers check Subject against the command's customer). No user
// token sets prices.
func (p Principal) Can(scope string) bool {
	if p.Kind == KindUser {
		return scope != ScopeOrdersPrice && (p.Role == RoleOps || scope == ScopeOrdersWrite)
	}
	return slices.Contains(p.Scopes, ScopeAll) || slices.Contains(p.Scopes, scope)
}

// Errors of authentication. Verify and Authenticate wrap exactly one of them.
var (
	// ErrInvalid: malformed, badly signed, wrong algorithm, unknown key,
	// missing claims.
	ErrInvalid = errors.New("invalid credentials")
	// ErrExpired: a token past its exp.
	ErrExpired = errors.New("token expired")
	// ErrRevoked: a revoked session or API key.
	ErrRevoked = errors.New("credentials revoked")
	// ErrUnavailable: the revocation or key store cannot answer, so the
	// credentials cannot be checked (fail closed: the caller is refused).
	ErrUnavailable = errors.New("credential store unavailable")
)
