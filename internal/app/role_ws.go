package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/ws"
	"github.com/tradewind/tradewind/web"
)

func init() {
	Register(Role{
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
			authn := wsAuthenticator{creds.Verifier}
			srv, err := ws.New(ws.Config{}, d.NC, inbox, authn, d.Log)
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
				for ctx.Err() == nil {
					ids, err := revocations.Watch(ctx)
					if err != nil {
						d.Log.Warn("cannot watch session revocations; retrying", "err", err)
					} else {
						for id := range ids {
							srv.Revoke(id)
						}
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
				return nil
			})
			return []Service{srv, watch}, nil
		},
	})
}

// wsAuthenticator adapts the gateway's token verifier to ws.Authenticator.
type wsAuthenticator struct{ v *auth.Verifier }

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
