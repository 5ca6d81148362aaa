package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
)

func init() {
	commands = append(commands, &commandRoute{
		pattern: "POST /v1/inventory/{sku}/restock",
		summary: "Add stock of a SKU",
		scope:   auth.ScopeInventoryWrite,
		class:   "inventory",
		types:   map[int]string{1: events.RestockV1},
		prepare: func(_ context.Context, _ *Server, r *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
			sku := r.PathValue("sku")
			tgt := target{aggregateID: sku, location: "/v1/inventory/" + url.PathEscape(sku), fromPath: map[string]string{"/sku": "sku"}}
			return tgt, fromPath(doc, "sku", sku)
		},
	})
}
