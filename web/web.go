// Package web serves the browser side that `tradewind serve` embeds: the
// console at / (a React app: orders, notifications, live operations,
// analytics, catalog; see docs/console.md), the demo page at /demo (live
// notifications, a button that places a test order) and the compiled
// TypeScript client under /app/.
//
// dist/ is the committed output of `npm run build` in this folder, so a Go
// build needs no Node.js; rebuild it after changing console/, client/ or
// demo/.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
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

// ConsoleRoutes are the console's client-side routes: each answers the
// console's index.html, so a reload or a shared link opens that view.
var ConsoleRoutes = []string{"/{$}", "/orders", "/orders/{id}", "/notifications", "/catalog", "/ops", "/analytics"}

// Register mounts the console at / (its routes, and its hashed assets
// under /assets/, cached as immutable), the demo page at /demo and the
// client's assets under /app/. orders (DemoOrders) is mounted at
// POST /demo/orders when not nil.
func Register(mux *http.ServeMux, orders http.Handler) {
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
	if orders != nil {
		mux.Handle("POST /demo/orders", orders)
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
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// DemoOrders places a test order for the user of the bearer token: the
// demo's button. It publishes orders.place like a storefront would; the
// customer is always the token's user, so a user can only order for
// themselves.
type DemoOrders struct {
	auth ws.Authenticator
	js   jetstream.JetStream
}

// NewDemoOrders validates its dependencies.
func NewDemoOrders(auth ws.Authenticator, js jetstream.JetStream) (*DemoOrders, error) {
	if auth == nil || js == nil {
		return nil, errors.New("demo orders: authenticator and JetStream are required")
	}
	return &DemoOrders{auth: auth, js: js}, nil
}

var skuRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (d *DemoOrders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		http.Error(w, "Authorization: Bearer <user token> required", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	p, err := d.auth.Authenticate(ctx, token)
	if err != nil {
		http.Error(w, "invalid, expired or revoked token", http.StatusUnauthorized)
		return
	}
	var in struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || !skuRE.MatchString(in.SKU) || in.Quantity < 1 || in.Quantity > 100 {
		http.Error(w, `want {"sku":"SKU-1","quantity":1..100}`, http.StatusBadRequest)
		return
	}
	orderID := uuid.NewString()
	cmd, err := events.New(events.PlaceOrderV1, "", events.PlaceOrder{
		OrderID: orderID, CustomerID: p.UserID, Currency: "EUR",
		Lines: []events.OrderLine{{SKU: in.SKU, Quantity: in.Quantity, UnitPrice: 1250}},
	}, events.WithSource("/tradewind/demo"))
	if err != nil {
		http.Error(w, "cannot build the command", http.StatusInternalServerError)
		return
	}
	if _, err := broker.Publish(ctx, d.js, cmd); err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the broker did not accept the order; try again", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"order_id\":%q}\n", orderID)
}
