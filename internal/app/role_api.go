package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/api"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/idempotency"
	"github.com/tradewind/tradewind/internal/images"
	"github.com/tradewind/tradewind/internal/opsapi"
	"github.com/tradewind/tradewind/internal/ratelimit"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/notifier/prefs"
)

// apiRole is the api role (listed in roleTable).
func apiRole() Role {
	return Role{
		Name:  "api",
		Help:  "the command gateway: POST /v1 commands, /openapi.json, /docs; operators' /v1/ops endpoints",
		Build: buildAPI,
	}
}

// devKeyFile keeps the development API key (plaintext, owner-only) so that
// `make run` prints the same key across restarts.
const devKeyFile = "dev-api-key"

func buildAPI(d *Deps) ([]Service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := d.Cfg
	creds, err := d.Credentials()
	if err != nil {
		return nil, err
	}
	keys, signing, development := creds.Keys, creds.Signing, creds.Development
	revocations, verifier := creds.Revocations, creds.Verifier
	var store ratelimit.Store
	var sweep func(context.Context) (int64, error)
	switch cfg.RateLimitStore {
	case "postgres":
		pg, err := ratelimit.NewPostgres(d.Pool)
		if err != nil {
			return nil, err
		}
		store, sweep = pg, pg.Sweep
	default:
		if store, err = ratelimit.NewKV(ctx, d.JS, "", cfg.Replicas); err != nil {
			return nil, err
		}
	}
	limiter, err := ratelimit.New(store, ratelimit.WithLogger(d.Log))
	if err != nil {
		return nil, err
	}
	// The image bucket, beside the KV buckets, with the streams' replicas.
	imageBucket, err := broker.EnsureImageStore(ctx, d.JS, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	idemPool, err := pgxpool.NewWithConfig(ctx, idempotency.PoolConfig(d.Pool.Config()))
	if err != nil {
		return nil, fmt.Errorf("idempotency pool: %w", err)
	}
	idem, err := idempotency.New(idemPool, cfg.IdempotencyTTL, time.Minute)
	if err != nil {
		idemPool.Close()
		return nil, err
	}
	srv, err := api.New(api.Config{
		BodyLimit: int64(cfg.APIBodyLimit),
		Limit:     ratelimit.Limit{Rate: float64(cfg.RateLimit), Burst: cfg.RateBurst},
	}, api.Deps{
		Publisher: api.JetStreamPublisher{JS: d.JS}, Keys: keys, Tokens: verifier, Sessions: revocations,
		Limiter: limiter, Idempotency: idem, Orders: api.PostgresOrders{Pool: d.Pool},
		Catalog: api.PostgresCatalog{Pool: d.Pool}, Images: images.Store{OBS: imageBucket}, Preferences: prefs.Store{Pool: d.Pool}, Log: d.Log,
		Failures: creds.Failures,
	})
	if err != nil {
		idemPool.Close()
		return nil, err
	}
	srv.Register(d.Mux)
	// The operators' endpoints (consumers, dead letters) behind the same
	// credentials: the console's Live operations view.
	ops, err := opsapi.New(d.JS, creds.Principal, d.Log)
	if err != nil {
		idemPool.Close()
		return nil, err
	}
	ops.Register(d.Mux)

	services := []Service{ServiceFunc("api-maintenance", func(ctx context.Context) error {
		defer idemPool.Close()
		defer idem.Close()
		if sweep != nil {
			go func() {
				_ = retry.Every(ctx, time.Minute, d.Log, "rate limit sweep failed", func(ctx context.Context) (bool, error) {
					_, err := sweep(ctx)
					return false, err
				})
			}() // Every returns only when ctx ends
		}
		return idem.RunCleanup(ctx, time.Minute, d.Log)
	})}
	if development {
		services = append(services, ServiceFunc("api-dev-credentials", func(ctx context.Context) error {
			return printDevCredentials(ctx, cfg.DataDir, d.Cfg.HTTPAddr, keys, signing)
		}))
	}
	return services, nil
}

// printDevCredentials prints (to stderr, not the log, which redacts
// secrets) a development API key with every scope and a demo user token,
// so the README tour can use curl at once. Only without
// TRADEWIND_JWT_SECRET, i.e. in development.
func printDevCredentials(ctx context.Context, dataDir, httpAddr string, keys *auth.Keys, signing []byte) error {
	path := filepath.Join(dataDir, devKeyFile)
	key := ""
	if b, err := os.ReadFile(path); err == nil {
		key = strings.TrimSpace(string(b))
		if _, err := keys.Authenticate(ctx, key); err != nil {
			key = "" // another database, or revoked: make a new one
		}
	}
	if key == "" {
		k, _, err := keys.Create(ctx, auth.NewKeyInput{Name: "development", Scopes: []string{auth.ScopeAll}})
		if err != nil {
			return fmt.Errorf("development API key: %w", err)
		}
		if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
			return fmt.Errorf("development API key: %w", err)
		}
		key = k
	}
	tok, _, err := auth.Issue(signing, "c-1", auth.RoleCustomer, 12*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, `
  Development credentials (TRADEWIND_JWT_SECRET is unset):
    API key (all scopes):          %s
    user token (customer c-1, 12h): %s
  e.g. curl -H "Authorization: Bearer %s" -H "Idempotency-Key: order-$(date +%%s)" \
         -H "Content-Type: application/json" http://%s/v1/orders \
         -d '{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}'
    docs: http://%s/docs

`, key, tok, key, httpAddr, httpAddr)
	<-ctx.Done()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
