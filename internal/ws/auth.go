package ws

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Principal is an authenticated browser user.
type Principal struct {
	UserID string // the customer id (the token's sub)
	Roles  []string
	// SessionID is the token's id (jti): Server.Revoke closes its connections.
	SessionID string
	// ExpiresAt is when the token stops being valid; the connection is
	// closed with CloseAuthFailed then. Zero means no expiry.
	ExpiresAt time.Time
}

// HasRole reports whether the principal has role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// Authenticator verifies a browser's access token. internal/auth's
// verifier with its revocation store satisfies it through a small adapter
// in internal/app; tests sign tokens themselves.
type Authenticator interface {
	// Authenticate returns the token's principal, or an error; an error
	// wrapping ErrRevoked means the session was revoked.
	Authenticate(ctx context.Context, token string) (Principal, error)
	// Revoked reports whether a session (Principal.SessionID) was revoked:
	// the periodic revalidation asks it, so a connection keeps its
	// principal, not its token (~300 bytes each).
	Revoked(ctx context.Context, sessionID string) (bool, error)
}

// ErrRevoked is wrapped by an Authenticator's error for a revoked session.
var ErrRevoked = errors.New("session revoked")
