package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/logx"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/store"
)

// Hooks let tests and embedders observe a starting system.
type Hooks struct {
	// Started is called once every role runs, with the state written.
	Started func(State)
}

// Serve runs the configured roles in this process until ctx ends. It
// starts them in steps (steps.go), each waiting out a dependency that is
// briefly unreachable, and stops them in reverse. The operator listener
// (/metrics, /readyz) starts first; the HTTP server answers /healthz from
// the next moment; /readyz turns 200 once NATS, PostgreSQL, migrations
// and every consumer hold. The state file exists only while every role
// runs. Serve returns the error of a step that cannot succeed or of the
// first service that failed; nil when ctx ended.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, hooks Hooks) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx) // ends what the steps started with it
	defer cancel()
	log = slog.New(logx.Redact(log.Handler())) // secrets never reach the log
	metrics.SetVersion(Version)
	b := &boot{cfg: cfg, log: log, ready: &readiness{log: log}, mux: http.NewServeMux()}
	defer b.stop()
	for _, s := range b.steps() {
		if err := b.start(ctx, s); err != nil {
			if ctx.Err() != nil {
				log.Info("shutting down before start-up completed", "step", s.name, "err", err)
				return nil
			}
			return err
		}
	}
	b.ready.started.Store(true)
	log.Info("tradewind is running", "roles", cfg.Roles, "nats", b.natsURL, "http", b.httpURL)
	if hooks.Started != nil {
		hooks.Started(b.state)
	}
	<-b.running.Done() // ctx ended, or a service failed
	b.ready.started.Store(false)
	if ctx.Err() != nil {
		log.Info("shutting down")
	} else {
		log.Error("service failed; shutting down", "err", context.Cause(b.running))
	}
	b.stop()
	return b.failed
}

// outboxMinAge is how long the relay leaves a row to the writer that
// publishes it after commit: far above a commit-to-ack time, far below
// anything a user would call a delay after a crash.
const outboxMinAge = 2 * time.Second

// errMigrationsPending: the database schema is older than this build's.
var errMigrationsPending = errors.New("migrations pending")

// migratedTo is the readiness check of PostgreSQL: reachable, and
// migrated to latest.
func migratedTo(pool *pgxpool.Pool, latest int64) func(context.Context) error {
	return func(ctx context.Context) error {
		v, err := store.AppliedVersion(ctx, pool)
		if err != nil {
			return err
		}
		if v < latest {
			return fmt.Errorf("%w: at %d, want %d", errMigrationsPending, v, latest)
		}
		return nil
	}
}

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
