package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/tracing"
)

// step is one part of starting a process. start returns what undoes it
// (nil: nothing to undo); a start that fails undoes its own half-done
// work, so that it can be tried again.
//
// A step with a dependency is retried (startBackoff, one warn line per
// attempt naming the dependency and the next wait) for as long as its
// error says the dependency is unreachable (unreachable): NATS
// restarting, PostgreSQL failing over, JetStream electing a leader. Any
// other error — a refused password, a bad stream layout, a port taken —
// ends start-up at once.
type step struct {
	name       string // what it starts, in logs and errors
	dependency string // what it waits for; "": never retried
	start      func(ctx context.Context) (closer func(), err error)
}

// startBackoff spaces the attempts of a waiting step: quick enough to
// catch a restart within seconds, capped so that an outage costs one
// log line per few seconds.
var startBackoff = retry.Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second}

// boot is a process being started: what the steps have built so far and
// the closers that undo them, in start order (stop runs them in reverse).
type boot struct {
	cfg     config.Config
	log     *slog.Logger
	ready   *readiness
	mux     *http.ServeMux // the HTTP server's: /healthz, then the roles' routes
	closers []func()

	tracer   *tracing.Provider
	httpURL  string
	opsURL   string
	auth     *natsAuth
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	pg       *pgboot.Result
	pool     *pgxpool.Pool
	flags    *flags.Store
	services []Service
	byRole   map[string][]Service
	running  context.Context // ends with Serve's context or the first failed service
	failed   error           // the first failed service's error, once stopped
	state    State
}

// start runs s, retrying it while its dependency is unreachable, and
// keeps its closer.
func (b *boot) start(ctx context.Context, s step) error {
	try := func(ctx context.Context) error {
		closer, err := s.start(ctx)
		if err != nil {
			if s.dependency == "" || !unreachable(err) {
				return retry.Permanent(err)
			}
			return err
		}
		if closer != nil {
			b.closers = append(b.closers, closer)
		}
		return nil
	}
	log := b.log.With("step", s.name, "waiting_for", s.dependency)
	if err := retry.Until(ctx, startBackoff, log, "start-up: dependency unreachable; retrying", try); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	return nil
}

// stop runs the closers in reverse start order.
func (b *boot) stop() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// runServices runs every service under one errgroup: the first to fail
// stops the others (b.running ends), and so does Serve's context. Its
// closer stops them and waits for all.
func (b *boot) runServices(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range b.services {
		g.Go(func() error {
			if err := s.Run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
			return nil
		})
	}
	b.running = gctx
	return func() {
		cancel()
		b.failed = g.Wait()
	}, nil
}

// unreachable reports whether err says a dependency cannot be reached
// right now — worth waiting for — rather than that it refused us or that
// we asked for something wrong. An authorization error is never
// unreachable: retrying a wrong password only hides it.
func unreachable(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // shut down by an administrator or a crash; starting up or in recovery
			"25006", // read-only transaction: a standby while the fail-over completes
			"53300": // too many connections
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exceptions
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == http.StatusServiceUnavailable // JetStream not enabled yet, no leader yet
	}
	var netErr net.Error
	return errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || // a request timed out (the caller's context is still alive)
		errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// natsTopology is the stream layout this process ensures.
func natsTopology(cfg config.Config) broker.Topology {
	topo := broker.DefaultTopology()
	topo.Replicas = cfg.Replicas
	topo.DuplicateWindow = cfg.DuplicateWindow
	topo.Partitions = cfg.Partitions
	return topo
}
