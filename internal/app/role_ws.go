package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/ws"
	"github.com/tradewind/tradewind/web"
)

// wsRole is the ws role (listed in roleTable).
func wsRole() Role {
	return Role{
		Name: "ws",
		Help: "WebSocket notifications at GET /v1/ws (and the demo page at /; POST /demo/seed in development)",
		Build: func(d *Deps) ([]Service, error) {
			creds, err := d.Credentials()
			if err != nil {
				return nil, fmt.Errorf("ws: %w", err)
			}
			revocations := creds.Revocations
			inbox, err := ws.NewPGInbox(d.Pool)
			if err != nil {
				return nil, err
			}
			authn := wsAuthenticator{creds.Verifier, revocations}
			c := d.Cfg
			srv, err := ws.New(ws.Config{
				OriginPatterns: c.WSOrigins, AuthTimeout: c.WSAuthTimeout,
				MaxConnections: c.WSMaxConnections, MaxConnectionsPerUser: c.WSMaxConnectionsPerUser,
				MaxAuthenticatingPerIP: c.WSMaxAuthenticatingPerIP, MaxSubscriptions: c.WSMaxSubscriptions,
				MaxFrameBytes: int64(c.WSMaxFrameBytes),
			}, d.NC, inbox, authn, d.Log)
			if err != nil {
				return nil, err
			}
			d.Mux.Handle("GET "+ws.Path, srv)
			seed, err := web.NewDemoSeed(authn, d.JS)
			if err != nil {
				return nil, err
			}
			// The demo page at /; POST /demo/seed in development mode only.
			// Development is the deployment's one switch (today: no JWT
			// secret configured; --dev where the configuration has it).
			web.Register(d.Mux, web.Config{Dev: creds.Development, Seed: seed})
			watch := ServiceFunc("ws-revocations", func(ctx context.Context) error {
				// Logout anywhere closes this instance's sockets of the
				// session at once; Server's periodic revalidation covers a
				// watch that is down.
				return retry.Forever(ctx, retry.Backoff{Base: time.Second, Max: 30 * time.Second}, d.Log,
					"cannot watch session revocations; retrying", func(ctx context.Context) error {
						ids, err := revocations.Watch(ctx)
						if err != nil {
							return err
						}
						for id := range ids {
							srv.Revoke(id)
						}
						return nil
					})
			})
			return []Service{srv, watch}, nil
		},
	}
}

// wsAuthenticator adapts the gateway's token verifier and the revocation
// store to ws.Authenticator.
type wsAuthenticator struct {
	v   *auth.Verifier
	rev *auth.Revocations
}

func (a wsAuthenticator) Revoked(ctx context.Context, sessionID string) (bool, error) {
	if a.rev == nil {
		return false, nil
	}
	return a.rev.IsRevoked(ctx, sessionID)
}

func (a wsAuthenticator) Authenticate(ctx context.Context, token string) (ws.Principal, error) {
	c, err := a.v.Verify(ctx, token)
	if errors.Is(err, auth.ErrRevoked) {
		return ws.Principal{}, fmt.Errorf("%w: %w", ws.ErrRevoked, err)
	}
	if err != nil {
		return ws.Principal{}, err
	}
	return ws.Principal{UserID: c.Subject, Roles: []string{c.Role}, SessionID: c.ID, ExpiresAt: c.ExpiresAt}, nil
}
