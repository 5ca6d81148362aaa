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
		pattern: "POST /v1/categories",
		summary: "Create or update a category",
		scope:   auth.ScopeCatalogWrite,
		class:   "catalog",
		types:   map[int]string{1: events.UpsertCategoryV1},
		prepare: func(_ context.Context, _ *Server, _ *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
			id, _ := doc["category_id"].(string)
			return target{aggregateID: id, location: "/v1/categories/" + url.PathEscape(id)}, nil
		},
	})
}
