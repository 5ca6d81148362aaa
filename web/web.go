// Package web serves the browser side that `tradewind serve` embeds: the
// demo page at / (live notifications, a button that places a test order)
// and the compiled TypeScript client under /app/.
//
// dist/ is the committed output of `npm run build` in this folder, so a Go
// build needs no Node.js; rebuild it after changing client/ or demo/.
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

// Register mounts the demo page at / and the assets under /app/. orders
// (DemoOrders) is mounted at POST /demo/orders when not nil.
func Register(mux *http.ServeMux, orders http.Handler) {
	assets := http.FileServerFS(Assets())
	mux.Handle("GET /app/", http.StripPrefix("/app", assets))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(Assets(), "demo/index.html")
		if err != nil {
			http.Error(w, "demo page missing from this build", http.StatusNotFound)
			return
		}
		setPageHeaders(w.Header())
		_, _ = w.Write(b)
	})
	if orders != nil {
		mux.Handle("POST /demo/orders", orders)
	}
}

// PageCSP is the demo page's Content-Security-Policy: scripts, styles and
// connections (fetch, and the WebSocket: CSP 3 'self' covers ws/wss of the
// same host) from this origin only, nothing inline, and no framing (the
// page holds a token: no clickjacking).
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
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
