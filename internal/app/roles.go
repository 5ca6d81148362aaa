package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/tracing"
)

// Deps are what a role is built from. They are created once per process by
// Serve and shared by every role in it.
type Deps struct {
	Cfg   config.Config
	Log   *slog.Logger
	NC    *nats.Conn
	JS    jetstream.JetStream
	Pool  *pgxpool.Pool
	Mux   *http.ServeMux // routes of the HTTP server (api, ws roles)
	Relay *outbox.Relay  // nil unless this process runs the relay role
	// Outbox publishes what a transaction wrote to the outbox right after
	// its commit (every process that writes the outbox has one).
	Outbox *outbox.Publisher

	creds credentialsOnce
	Flags *flags.Store // feature flags, watched live (never nil under Serve)
	// Tracing is the tracer provider; nil or disabled: runners trace nothing.
	Tracing *tracing.Provider
}

// Service is a long-running part of a role.
type Service interface {
	Name() string
	Run(ctx context.Context) error
}

// Role builds the services one role runs.
type Role struct {
	Name  string
	Help  string
	Build func(d *Deps) ([]Service, error)
}

// roles are every role by name; roleTable is the one place a role is added.
var roles = roleTable()

// roleTable lists the roles, each built in its own file (role_*.go).
func roleTable() map[string]Role {
	m := map[string]Role{}
	for _, r := range []Role{apiRole(), inventoryRole(), notifierRole(), ordersRole(), paymentsRole(),
		projectionsRole(), relayRole(), wsRole()} {
		if _, dup := m[r.Name]; dup {
			panic("app: duplicate role " + r.Name)
		}
		m[r.Name] = r
	}
	return m
}

// Roles returns the roles sorted by name.
func Roles() []Role {
	out := make([]Role, 0, len(roles))
	for _, r := range roles {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NewRunner builds a consumer runner with the process-wide options
// (logger, relay wake-up, batch size and max deliver from the config).
func (d *Deps) NewRunner(cfg runner.Config, h runner.Handler) (*runner.Runner, error) {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = d.Cfg.BatchSize
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = d.Cfg.MaxDeliver
	}
	opts := []runner.Option{runner.WithLogger(d.Log), runner.WithObserver(metrics.ConsumerObserver{}),
		runner.WithCommitted(observeSagaOutcomes)}
	if d.Outbox != nil {
		opts = append(opts, runner.WithPublisher(d.Outbox))
	}
	if d.Tracing != nil && d.Tracing.Enabled() {
		opts = append(opts, runner.WithTracer(d.Tracing.Tracer()))
	}
	r, err := runner.New(cfg, d.JS, d.Pool, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("build consumer %s: %w", cfg.Name, err)
	}
	return r, nil
}

type serviceFunc struct {
	name string
	run  func(ctx context.Context) error
}

func (s serviceFunc) Name() string                  { return s.name }
func (s serviceFunc) Run(ctx context.Context) error { return s.run(ctx) }

// ServiceFunc adapts a function to Service.
func ServiceFunc(name string, run func(ctx context.Context) error) Service {
	return serviceFunc{name: name, run: run}
}

// build builds the outbox publisher, the relay (relay role), the services
// of every configured role, and the metrics poller of them all; byRole
// holds each role's services (for discovery).
func (d *Deps) build() (services []Service, byRole map[string][]Service, err error) {
	if d.Outbox, err = outbox.NewPublisher(outbox.PublisherConfig{Observe: metrics.ObserveOutboxPublish}, d.Pool, d.JS, d.Log); err != nil {
		return nil, nil, err
	}
	if d.Cfg.HasRole("relay") {
		// Writers publish their own rows (d.Outbox); the relay sweeps what
		// they left behind.
		relayCfg := outbox.RelayConfig{Observe: metrics.ObserveOutboxPublish, MinAge: outboxMinAge}
		if d.Relay, err = outbox.NewRelay(relayCfg, d.Pool, d.JS, d.Log); err != nil {
			return nil, nil, err
		}
	}
	services = []Service{ServiceFunc("outbox-publisher", d.Outbox.Run)}
	byRole = map[string][]Service{}
	for _, name := range d.Cfg.Roles {
		role, ok := roles[name]
		if !ok {
			d.Log.Warn("role has no implementation in this build; skipped", "role", name)
			continue
		}
		s, err := role.Build(d)
		if err != nil {
			return nil, nil, fmt.Errorf("role %s: %w", name, err)
		}
		services = append(services, s...)
		byRole[name] = s
	}
	poller, err := metricsPoller(d, services)
	if err != nil {
		return nil, nil, err
	}
	if poller != nil {
		services = append(services, poller)
	}
	return services, byRole, nil
}
