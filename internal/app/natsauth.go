package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/natsauth"
)

// natsAuth is how this process authenticates to NATS (internal/natsauth
// holds the rights of each user).
//   - Embedded server: every user's password is generated once into
//     <data dir>/nats-credentials (0600); the server accepts only those
//     users; this process connects as its roles' user; the state file's
//     nats_url carries the ops user so that the CLI and the nats CLI work.
//   - NATS_URL: the user's password is read from TRADEWIND_NATS_CREDENTIALS
//     when set; else NATS_URL's user:password (or no authentication, for a
//     server without users) is used as given.
type natsAuth struct {
	user  string
	users []*server.User // the embedded server's users; nil for NATS_URL
	opts  []nats.Option
	ops   string // the ops password (embedded only)
}

// newNATSAuth resolves the process's NATS credentials; log receives the
// connection's asynchronous errors (a permission violation is one).
func newNATSAuth(cfg config.Config, log *slog.Logger) (*natsAuth, error) {
	a := &natsAuth{user: cfg.NATSUser}
	if a.user == "" {
		a.user = natsauth.UserFor(cfg.Roles)
	}
	onError := nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		log.Error("NATS error (a permissions violation means this role lacks a right in internal/natsauth)",
			"nats_user", a.user, "subscription", subject, "err", err)
	})
	if cfg.NATSURL != "" {
		a.opts = []nats.Option{onError}
		if cfg.NATSCredentials == "" {
			return a, nil
		}
		pw, err := natsauth.ReadPassword(cfg.NATSCredentials, a.user)
		if err != nil {
			return nil, fmt.Errorf("TRADEWIND_NATS_CREDENTIALS: %w", err)
		}
		a.opts = append(a.opts, natsauth.ClientOptions(a.user, pw)...)
		return a, nil
	}
	ps, err := natsauth.Principals(cfg.Roles)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.User
	}
	dir := cfg.NATSCredentials
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, natsauth.DirName)
	}
	pws, err := natsauth.Ensure(dir, names)
	if err != nil {
		return nil, err
	}
	pw, ok := pws[a.user]
	if !ok {
		return nil, fmt.Errorf("TRADEWIND_NATS_USER %q: the embedded server has no such user (known: roles, %q, %q, %s<context>)",
			a.user, natsauth.UserAll, natsauth.UserOps, natsauth.ProducerPrefix)
	}
	if a.users, err = natsauth.ServerUsers(ps, pws); err != nil {
		return nil, err
	}
	a.opts = append([]nats.Option{onError}, natsauth.ClientOptions(a.user, pw)...)
	a.ops = pws[natsauth.UserOps]
	return a, nil
}

// stateURL is the nats_url of the state file: with the embedded server,
// natsURL with the ops user (the state file is owner-only), else natsURL.
func (a *natsAuth) stateURL(natsURL string) (string, error) {
	if a.ops == "" {
		return natsURL, nil
	}
	u, err := url.Parse(natsURL)
	if err != nil {
		return "", fmt.Errorf("embedded NATS URL %q: %w", natsURL, err)
	}
	if u.Host == "" {
		return "", errors.New("embedded NATS URL has no host")
	}
	u.User = url.UserPassword(natsauth.UserOps, a.ops)
	return u.String(), nil
}

// explain adds what to set to a connection refused for its credentials.
func (a *natsAuth) explain(err error) error {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
		return fmt.Errorf("%w (NATS user %q: set TRADEWIND_NATS_CREDENTIALS to the directory holding its password file, "+
			"or put user:password in NATS_URL; docs/security.md, NATS accounts)", err, a.user)
	}
	return err
}
