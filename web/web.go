// Package web serves the browser side that `tradewind serve` embeds: the
// console at / (a React app: orders, notifications, live operations,
// analytics, catalog; see docs/console.md), the demo page at /demo (live
// notifications, a button that places a test order through POST
// /v1/orders with the user's token) and the compiled TypeScript client
// under /app/. In development mode only, POST /demo/seed puts the demo's
// product in the catalog.
//
// dist/ is the committed output of `npm run build` in this folder, so a Go
// build needs no Node.js; rebuild it after changing console/, client/ or
// demo/.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/ws"
)

//go:embed dist
var dist embed.FS

// Assets is the built client and demo page (dist/).
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time
	}
	return sub
}

// Config configures what Register mounts.
type Config struct {
	// Dev mounts the /demo/* write endpoints (POST /demo/seed). They exist
	// only in development mode: false, the default, mounts none of them.
	// The ws role sets it from the deployment's one development switch.
	Dev bool
	// Seed is POST /demo/seed (DemoSeed), mounted only when Dev.
	Seed http.Handler
}

// ConsoleRoutes are the console's client-side routes: each answers the
// console's index.html, so a reload or a shared link opens that view.
var ConsoleRoutes = []string{"/{$}", "/orders", "/orders/{id}", "/notifications", "/catalog", "/ops", "/analytics"}

// Register mounts the console at / (its routes, and its hashed assets
// under /assets/, cached as immutable), the demo page at /demo and the
// client's assets under /app/, and in development mode (cfg.Dev) the
// /demo/* write endpoints. The pages place orders through the gateway
// (POST /v1/orders) with the user's token, so they get what any customer
// gets: catalog prices, idempotency, rate limits.
func Register(mux *http.ServeMux, cfg Config) {
	assets := http.FileServerFS(Assets())
	mux.Handle("GET /app/", http.StripPrefix("/app", assets))
	console := Console()
	for _, p := range ConsoleRoutes {
		mux.Handle("GET "+p, console)
	}
	mux.Handle("GET /assets/", consoleAssets())
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		page(w, "demo/index.html")
	})
	if cfg.Dev && cfg.Seed != nil {
		mux.Handle("POST /demo/seed", cfg.Seed)
	}
}

// Console answers the console's index.html (never cached: it names the
// current build's hashed assets).
func Console() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page(w, "console/index.html")
	})
}

// consoleAssets serves dist/console/assets/: content-hashed file names, so
// a response never changes and may be cached for good.
func consoleAssets() http.Handler {
	sub, err := fs.Sub(Assets(), "console")
	if err != nil {
		panic(err) // a constant path
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := fs.Stat(sub, strings.TrimPrefix(r.URL.Path, "/")); err != nil {
			http.NotFound(w, r) // not cached: a later build may have it
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}

func page(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(Assets(), name)
	if err != nil {
		http.Error(w, name+" is missing from this build (npm run build in web/)", http.StatusNotFound)
		return
	}
	setPageHeaders(w.Header())
	_, _ = w.Write(b)
}

// PageCSP is the demo page's Content-Security-Policy: scripts, styles and
// connections (fetch, and the WebSocket: CSP 3 'self' covers ws/wss of the
// same host) from this origin only, nothing inline, and no framing (the
// page holds a token: no clickjacking).
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// setPageHeaders sets the security headers of an HTML page.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// The demo's product: what the page's button orders.
const (
	DemoSKU      = "SKU-1"
	demoPrice    = 1250
	demoCurrency = "EUR"
	demoStock    = 10
)

// demoNamespace derives the seed commands' ids.
var demoNamespace = uuid.MustParse("5d1b7c0e-2f4a-4e63-9b8d-0c6a1f2e3d47")

// DemoSeed (development only) puts the demo's product in the catalog and
// restocks it, as a producer service would, so that the page's button
// works on a fresh development system. Any signed-in user may call it.
// The commands' ids are derived from the minute, so however often it is
// called it restocks at most once a minute (JetStream's duplicate window
// and the inventory's inbox drop the repeats).
type DemoSeed struct {
	auth tokenChecker
	js   jetstream.JetStream
	now  func() time.Time
}

// tokenChecker is the part of ws.Authenticator the seed uses.
type tokenChecker interface {
	Authenticate(ctx context.Context, token string) (ws.Principal, error)
}

// NewDemoSeed validates its dependencies.
func NewDemoSeed(auth tokenChecker, js jetstream.JetStream) (*DemoSeed, error) {
	if auth == nil || js == nil {
		return nil, errors.New("demo seed: authenticator and JetStream are required")
	}
	return &DemoSeed{auth: auth, js: js, now: time.Now}, nil
}

func (d *DemoSeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		http.Error(w, "Authorization: Bearer <user token> required", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := d.auth.Authenticate(ctx, token); err != nil {
		http.Error(w, "invalid, expired or revoked token", http.StatusUnauthorized)
		return
	}
	minute := d.now().UTC().Truncate(time.Minute).Format(time.RFC3339)
	for _, c := range []struct {
		typ, name string
		data      any
	}{
		{events.UpsertProductV1, "product", events.Product{SKU: DemoSKU, Name: "Kite", Description: "The demo page's product",
			Price: demoPrice, Currency: demoCurrency}},
		{events.RestockV1, "restock", events.Restock{SKU: DemoSKU, Quantity: demoStock}},
	} {
		id := uuid.NewSHA1(demoNamespace, []byte(c.name+"\x00"+minute)).String()
		cmd, err := events.New(c.typ, "", c.data, events.WithID(id), events.WithSource("/tradewind/demo"))
		if err != nil {
			http.Error(w, "cannot build the command", http.StatusInternalServerError)
			return
		}
		if _, err := broker.Publish(ctx, d.js, cmd); err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the broker did not accept the seed; try again", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"sku\":%q,\"price\":%d,\"currency\":%q}\n", DemoSKU, demoPrice, demoCurrency)
}
