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
		pattern: "POST /v1/products",
		summary: "Create or update a product",
		scope:   auth.ScopeCatalogWrite,
		class:   "catalog",
		types:   map[int]string{1: events.UpsertProductV1},
		prepare: func(_ context.Context, _ *Server, _ *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
			sku, _ := doc["sku"].(string)
			return target{aggregateID: sku, location: "/v1/products/" + url.PathEscape(sku)}, nil
		},
	})
}
