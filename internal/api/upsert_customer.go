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
		pattern: "POST /v1/customers",
		summary: "Create or update a customer",
		scope:   auth.ScopeCustomersWrite,
		class:   "customers",
		types:   map[int]string{1: events.UpsertCustomerV1},
		prepare: func(_ context.Context, _ *Server, _ *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
			id, _ := doc["customer_id"].(string)
			return target{aggregateID: id, location: "/v1/customers/" + url.PathEscape(id)}, nil
		},
	})
}
