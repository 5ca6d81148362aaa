package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/store"
)

// placeOrder creates an all-scope API key in the database at dbURL and
// places one order for customer through the gateway at httpAddr; it
// returns the order's id, its position token and the key.
func placeOrder(t *testing.T, ctx context.Context, dbURL, httpAddr, customer string) (id, position, key string) {
	t.Helper()
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	keys, _ := auth.NewKeys(pool)
	key, _, err = keys.Create(ctx, auth.NewKeyInput{Name: customer, Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/orders",
		strings.NewReader(`{"customer_id":"`+customer+`","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unit_price":700}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", customer+"-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	id, _ = acc["id"].(string)
	position, _ = acc["position"].(string)
	if resp.StatusCode != http.StatusAccepted || id == "" {
		t.Fatalf("place order: %d %v", resp.StatusCode, acc)
	}
	return id, position, key
}
