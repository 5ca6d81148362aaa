package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/logx"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/tracing"
)

// Hooks let tests and embedders observe a starting system.
type Hooks struct {
	// Started is called once every role runs, with the state written.
	Started func(State)
}

// Serve runs the configured roles in this process until ctx ends. The
// HTTP server answers /healthz from the first moment; the operator
// listener (startOps) answers /metrics and /readyz, which turns 200 once
// NATS, PostgreSQL, migrations and every consumer are up.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, hooks Hooks) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log = slog.New(logx.Redact(log.Handler())) // secrets never reach the log
	metrics.SetVersion(Version)
	tracer, err := tracing.Setup(ctx, tracing.Config{Endpoint: cfg.OTLPEndpoint, ServiceName: cfg.OTELServiceName, Version: Version})
	if err != nil {
		return err
	}
	defer func() { _ = tracer.Shutdown(context.Background()) }() // flushes spans
	if tracer.Enabled() {
		log.Info("tracing on", "otlp_endpoint", cfg.OTLPEndpoint, "service", cfg.OTELServiceName)
	}

	ready := &readiness{log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	opsURL, stopOps, err := startOps(cfg.OpsAddr, ready, log)
	if err != nil {
		return err
	}
	defer stopOps()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on TRADEWIND_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	// No ReadTimeout/WriteTimeout: WebSocket connections live long and the
	// API bounds bodies itself; headers and idle keep-alives are bounded.
	httpSrv := &http.Server{Handler: tracer.Middleware(metrics.HTTP(mux)), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = httpSrv.Serve(ln) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = httpSrv.Shutdown(sctx)
	}()
	httpURL := "http://" + ln.Addr().String()
	log.Info("HTTP listening", "url", httpURL)

	// NATS: external or embedded, with this process's user (natsauth.go).
	natsAuth, err := newNATSAuth(cfg, log)
	if err != nil {
		return err
	}
	natsURL := cfg.NATSURL
	if natsURL == "" {
		host, portStr, _ := net.SplitHostPort(cfg.NATSListen)
		port, _ := strconv.Atoi(portStr)
		if port == broker.DefaultPort {
			port = 0 // 4222, or a free port when taken
		}
		interval, always, _ := cfg.SyncSetting()
		emb, err := broker.StartEmbedded(broker.EmbeddedConfig{
			Dir: filepath.Join(cfg.DataDir, "nats"), Host: host, Port: port,
			SyncInterval: interval, SyncAlways: always, Users: natsAuth.users,
		})
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		natsURL = emb.URL
		log.Info("embedded NATS JetStream started", "url", natsURL, "store", filepath.Join(cfg.DataDir, "nats"))
	}
	nc, err := broker.Connect(natsURL, "tradewind-serve", natsAuth.opts...)
	if err != nil {
		return natsAuth.explain(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	ready.set(func(r *readiness) { r.nats = nc.IsConnected })

	// PostgreSQL: DATABASE_URL, a local server, or a throwaway cluster.
	pg, err := pgboot.Resolve(ctx, pgboot.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop(context.Background()) }()
	log.Info("PostgreSQL found", "source", pg.Source, "url", pgboot.Redact(pg.URL))
	if err := store.Migrate(ctx, pg.URL); err != nil {
		return err
	}
	pool, err := store.Open(ctx, pg.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store.WarnIfAutovacuumOff(ctx, pool, log)
	latest, err := store.LatestVersion()
	if err != nil {
		return err
	}
	ready.set(func(r *readiness) {
		r.pg = func(ctx context.Context) error {
			v, err := store.AppliedVersion(ctx, pool)
			if err != nil {
				return err
			}
			if v < latest {
				return fmt.Errorf("%w: at %d, want %d", errMigrationsPending, v, latest)
			}
			return nil
		}
	})

	topo := broker.DefaultTopology()
	topo.Replicas = cfg.Replicas
	topo.DuplicateWindow = cfg.DuplicateWindow
	if err := broker.EnsureStreams(ctx, js, topo); err != nil {
		return err
	}

	// The payment provider: the configured one, or the simulator in-process.
	paymentURL, stopProvider, err := startPaymentProvider(cfg, log)
	if err != nil {
		return err
	}
	defer stopProvider()
	cfg.PaymentURL = paymentURL

	flagStore, err := flags.Open(ctx, js, flags.Options{Replicas: cfg.Replicas, Log: log})
	if err != nil {
		return err
	}

	deps := &Deps{Cfg: cfg, Log: log, NC: nc, JS: js, Pool: pool, Mux: mux, Flags: flagStore, Tracing: tracer}
	defer deps.closeCredentials()
	if deps.Outbox, err = outbox.NewPublisher(outbox.PublisherConfig{Observe: metrics.ObserveOutboxPublish}, pool, js, log); err != nil {
		return err
	}
	if cfg.HasRole("relay") {
		// Writers publish their own rows (deps.Outbox); the relay sweeps
		// what they left behind.
		relayCfg := outbox.RelayConfig{Observe: metrics.ObserveOutboxPublish, MinAge: outboxMinAge}
		if deps.Relay, err = outbox.NewRelay(relayCfg, pool, js, log); err != nil {
			return err
		}
	}
	services := []Service{ServiceFunc("outbox-publisher", deps.Outbox.Run)}
	byRole := map[string][]Service{}
	for _, name := range cfg.Roles {
		role, ok := roles[name]
		if !ok {
			log.Warn("role has no implementation in this build; skipped", "role", name)
			continue
		}
		s, err := role.Build(deps)
		if err != nil {
			return fmt.Errorf("role %s: %w", name, err)
		}
		services = append(services, s...)
		byRole[name] = s
	}
	ready.set(func(r *readiness) { r.services = services })
	if poller, err := metricsPoller(deps, services); err != nil {
		return err
	} else if poller != nil {
		services = append(services, poller)
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(services))
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", s.Name(), err)
			}
		}()
	}

	stopDiscovery, err := registerDiscovery(nc, Version, byRole, map[string]string{"http": httpURL, "ops": opsURL})
	if err != nil {
		return err
	}
	defer stopDiscovery()

	stateNATSURL, err := natsAuth.stateURL(natsURL)
	if err != nil {
		return err
	}
	st := State{PID: os.Getpid(), NATSURL: stateNATSURL, DatabaseURL: pg.URL, HTTPURL: httpURL, OpsURL: opsURL, PaymentURL: paymentURL, StartedAt: time.Now().UTC()}
	if err := WriteState(cfg.DataDir, st); err != nil {
		return err
	}
	defer RemoveState(cfg.DataDir, st.PID)
	ready.started.Store(true)
	log.Info("tradewind is running", "roles", cfg.Roles, "nats", natsURL, "http", httpURL)
	if hooks.Started != nil {
		hooks.Started(st)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("service failed; shutting down", "err", err)
	}
	ready.started.Store(false)
	cancel()
	wg.Wait()
	return err
}

// outboxMinAge is how long the relay leaves a row to the writer that
// publishes it after commit: far above a commit-to-ack time, far below
// anything a user would call a delay after a crash.
const outboxMinAge = 2 * time.Second

// errMigrationsPending: the database schema is older than this build's.
var errMigrationsPending = errors.New("migrations pending")

// readiness answers /readyz. Its checks are filled in as start-up
// progresses, while the HTTP server already serves. The answer names each
// dependency and its state in fixed words ("ok", "disconnected",
// "unreachable", "migrations pending", "not running"); the error behind a
// state goes to the log only, never to the response.
type readiness struct {
	log      *slog.Logger
	started  atomic.Bool
	mu       sync.Mutex
	nats     func() bool
	pg       func(context.Context) error
	services []Service
}

func (r *readiness) set(f func(r *readiness)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *readiness) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	nats, pg, services := r.nats, r.pg, r.services
	r.mu.Unlock()
	checks := map[string]string{}
	ok := r.started.Load()
	if !ok {
		checks["startup"] = "starting"
	}
	if nats != nil {
		if nats() {
			checks["nats"] = "ok"
		} else {
			checks["nats"], ok = "disconnected", false
		}
	}
	if pg != nil {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		err := pg(ctx)
		cancel()
		switch {
		case err == nil:
			checks["postgres"] = "ok"
		case errors.Is(err, errMigrationsPending):
			checks["postgres"], ok = "migrations pending", false
		default:
			checks["postgres"], ok = "unreachable", false
		}
		if err != nil && r.log != nil {
			r.log.Warn("readiness: PostgreSQL check failed", "err", err)
		}
	}
	if r.started.Load() {
		for _, s := range services {
			// A service running several consumers (the projection group)
			// reports each by name: "" when it is applied, else why not.
			if rc, ok2 := s.(interface{ Readiness() map[string]string }); ok2 {
				for name, reason := range rc.Readiness() {
					if reason == "" {
						checks["consumer:"+name] = "ok"
					} else {
						checks["consumer:"+name], ok = reason, false
					}
				}
				continue
			}
			// A service that knows why it refuses to run says so.
			if nr, ok2 := s.(interface{ NotReady() string }); ok2 {
				if reason := nr.NotReady(); reason != "" {
					checks["consumer:"+s.Name()], ok = reason, false
					continue
				}
			}
			if rs, isRunner := s.(interface{ Running() bool }); isRunner {
				if rs.Running() {
					checks["consumer:"+s.Name()] = "ok"
				} else {
					checks["consumer:"+s.Name()], ok = "not running", false
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	status := "ready"
	if !ok {
		status = "not ready"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
}
