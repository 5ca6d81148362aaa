package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/tracing"
)

// steps are the start of a process, in order; it stops in reverse.
func (b *boot) steps() []step {
	return []step{
		{"tracing", "", b.startTracing},
		{"operator listener", "", b.startOps}, // /readyz answers "starting" from here on
		{"HTTP listener", "", b.startHTTP},    // /healthz answers from here on
		{"NATS user", "", b.natsUser},
		{"embedded NATS", "", b.startEmbedded},       // unless NATS_URL is set
		{"NATS", "NATS", b.connectNATS},              // and the streams
		{"PostgreSQL", "PostgreSQL", b.openPostgres}, // and the migrations
		{"payment provider", "", b.startProvider},
		{"feature flags", "NATS", b.openFlags},
		{"roles", "NATS and PostgreSQL", b.buildRoles},
		{"services", "", b.runServices},
		{"discovery", "NATS", b.announce},
		{"state file", "", b.writeState},
	}
}

func (b *boot) startTracing(ctx context.Context) (func(), error) {
	tracer, err := tracing.Setup(ctx, tracing.Config{Endpoint: b.cfg.OTLPEndpoint, ServiceName: b.cfg.OTELServiceName, Version: Version})
	if err != nil {
		return nil, err
	}
	b.tracer = tracer
	if tracer.Enabled() {
		b.log.Info("tracing on", "otlp_endpoint", b.cfg.OTLPEndpoint, "service", b.cfg.OTELServiceName)
	}
	return func() { _ = tracer.Shutdown(context.Background()) }, nil // flushes spans
}

func (b *boot) startOps(context.Context) (func(), error) {
	url, stop, err := startOps(b.cfg.OpsAddr, b.ready, b.log)
	b.opsURL = url
	return stop, err
}

func (b *boot) startHTTP(context.Context) (func(), error) {
	b.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	ln, err := net.Listen("tcp", b.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on TRADEWIND_HTTP_ADDR %s: %w", b.cfg.HTTPAddr, err)
	}
	// No ReadTimeout/WriteTimeout: WebSocket connections live long and the
	// API bounds bodies itself; headers and idle keep-alives are bounded.
	srv := &http.Server{Handler: b.tracer.Middleware(metrics.HTTP(b.mux)), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Serve(ln) }()
	b.httpURL = "http://" + ln.Addr().String()
	b.log.Info("HTTP listening", "url", b.httpURL)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// natsUser resolves the user this process connects to NATS as, and the
// embedded server's users (natsauth.go).
func (b *boot) natsUser(context.Context) (func(), error) {
	auth, err := newNATSAuth(b.cfg, b.log)
	b.auth = auth
	return nil, err
}

// startEmbedded starts the embedded NATS server, with every user, unless
// NATS_URL names a server.
func (b *boot) startEmbedded(context.Context) (func(), error) {
	b.natsURL = b.cfg.NATSURL
	if b.natsURL != "" {
		return nil, nil
	}
	host, portStr, _ := net.SplitHostPort(b.cfg.NATSListen)
	port, _ := strconv.Atoi(portStr)
	if port == broker.DefaultPort {
		port = 0 // 4222, or a free port when taken
	}
	interval, always, _ := b.cfg.SyncSetting()
	dir := filepath.Join(b.cfg.DataDir, "nats")
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{
		Dir: dir, Host: host, Port: port, SyncInterval: interval, SyncAlways: always, Users: b.auth.users,
	})
	if err != nil {
		return nil, err
	}
	b.natsURL = emb.URL
	b.log.Info("embedded NATS JetStream started", "url", emb.URL, "store", dir)
	return emb.Shutdown, nil
}

// connectNATS connects as this process's user and ensures the streams.
// A refused user fails at once, with what to set (natsAuth.explain).
func (b *boot) connectNATS(ctx context.Context) (func(), error) {
	nc, err := broker.Connect(b.natsURL, "tradewind-serve", b.auth.opts...)
	if err != nil {
		return nil, b.auth.explain(err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = broker.EnsureStreams(ctx, js, natsTopology(b.cfg))
	}
	if err != nil {
		nc.Close()
		return nil, b.auth.explain(err)
	}
	b.nc, b.js = nc, js
	b.ready.set(func(r *readiness) { r.nats = nc.IsConnected })
	return nc.Close, nil
}

// openPostgres finds PostgreSQL (DATABASE_URL, a local server, or a
// throwaway cluster), migrates it and opens the pool.
func (b *boot) openPostgres(ctx context.Context) (_ func(), err error) {
	pg, err := pgboot.Resolve(ctx, pgboot.Options{DatabaseURL: b.cfg.DatabaseURL, DataDir: b.cfg.DataDir, Logger: b.log})
	if err != nil {
		return nil, err
	}
	stopPG := func() { _ = pg.Stop(context.Background()) }
	defer func() {
		if err != nil {
			stopPG()
		}
	}()
	b.log.Info("PostgreSQL found", "source", pg.Source, "url", pgboot.Redact(pg.URL))
	latest, err := store.LatestVersion()
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx, pg.URL); err != nil {
		return nil, err
	}
	pool, err := store.Open(ctx, pg.URL)
	if err != nil {
		return nil, err
	}
	store.WarnIfAutovacuumOff(ctx, pool, b.log)
	b.pg, b.pool = pg, pool
	b.ready.set(func(r *readiness) { r.pg = migratedTo(pool, latest) })
	return func() { pool.Close(); stopPG() }, nil
}

// startProvider starts the payment provider simulator when this process
// needs one and none is configured (provider.go).
func (b *boot) startProvider(context.Context) (func(), error) {
	url, stop, err := startPaymentProvider(b.cfg, b.log)
	b.cfg.PaymentURL = url
	return stop, err
}

// openFlags loads the feature flags and watches them until the process
// stops.
func (b *boot) openFlags(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	fl, err := flags.Open(ctx, b.js, flags.Options{Replicas: b.cfg.Replicas, Log: b.log})
	if err != nil {
		cancel()
		return nil, err
	}
	b.flags = fl
	return cancel, nil
}

// buildRoles builds the configured roles' services. Their routes go to a
// mux of the attempt's own, mounted once every role is built, so that a
// retried attempt registers its routes afresh.
//
// Hazard: an attempt that fails after some role was built leaves what
// that role opened (the gateway's idempotency pool) to the garbage
// collector; only an outage during start-up costs that.
func (b *boot) buildRoles(context.Context) (func(), error) {
	mux := http.NewServeMux()
	d := &Deps{Cfg: b.cfg, Log: b.log, NC: b.nc, JS: b.js, Pool: b.pool, Mux: mux, Flags: b.flags, Tracing: b.tracer}
	services, byRole, err := d.build()
	if err != nil {
		d.closeCredentials()
		return nil, err
	}
	b.mux.Handle("/", mux)
	b.services, b.byRole = services, byRole
	b.ready.set(func(r *readiness) { r.services = services })
	return d.closeCredentials, nil
}

// announce answers discovery requests (discovery.go).
func (b *boot) announce(context.Context) (func(), error) {
	return registerDiscovery(b.nc, Version, b.byRole, map[string]string{"http": b.httpURL, "ops": b.opsURL})
}

// writeState writes the state file the CLI finds the system by; it is
// removed first on the way down.
func (b *boot) writeState(context.Context) (func(), error) {
	natsURL, err := b.auth.stateURL(b.natsURL)
	if err != nil {
		return nil, err
	}
	b.state = State{PID: os.Getpid(), NATSURL: natsURL, DatabaseURL: b.pg.URL, HTTPURL: b.httpURL, OpsURL: b.opsURL,
		PaymentURL: b.cfg.PaymentURL, StartedAt: time.Now().UTC()}
	if err := WriteState(b.cfg.DataDir, b.state); err != nil {
		return nil, err
	}
	return func() { RemoveState(b.cfg.DataDir, b.state.PID) }, nil
}
