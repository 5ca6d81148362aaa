package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
)

// commands are the gateway's command endpoints: this table is the one
// place an endpoint is added. Register serves them and the OpenAPI
// document describes them, in this order.
var commands = []*commandRoute{
	{
		pattern: "POST /v1/orders/{id}/cancel",
		summary: "Cancel an order",
		scope:   auth.ScopeOrdersWrite,
		class:   "orders",
		types:   map[int]string{1: events.CancelOrderV1},
		emptyOK: true,
		prepare: prepareCancelOrder,
	},
	{
		pattern: "POST /v1/orders",
		summary: "Place an order",
		scope:   auth.ScopeOrdersWrite,
		class:   "orders",
		types:   map[int]string{1: events.PlaceOrderV1, 2: events.PlaceOrderV2},
		deprecated: map[int]deprecation{1: {
			Since: placeOrderV2Shipped, Sunset: placeOrderV1Sunset,
			Link: "/docs#orders-place-v2",
		}},
		prepare: preparePlaceOrder,
		doc: "Prices come from the catalog: a caller without the " + auth.ScopeOrdersPrice + " scope (every user token; API keys without it) " +
			"may omit unit_price, and the gateway prices each line from the catalog; it refuses with 422 an unknown SKU (unknown-sku), " +
			"a product priced in another currency (currency-mismatch) and a unit_price other than the catalog's (price-mismatch). " +
			"An API key with " + auth.ScopeOrdersPrice + " sends its own prices. Any caller: lines totalling less than 1 are refused (invalid-total).",
	},
	upsert("POST /v1/inventory/{sku}/restock", "Add stock of a SKU", auth.ScopeInventoryWrite, "inventory",
		events.RestockV1, idFromPath("sku", "/v1/inventory/")),
	upsert("POST /v1/categories", "Create or update a category", auth.ScopeCatalogWrite, "catalog",
		events.UpsertCategoryV1, idFromBody("category_id", "/v1/categories/")),
	upsert("POST /v1/customers", "Create or update a customer", auth.ScopeCustomersWrite, "customers",
		events.UpsertCustomerV1, idFromBody("customer_id", "/v1/customers/")),
	upsert("POST /v1/products", "Create or update a product", auth.ScopeCatalogWrite, "catalog",
		events.UpsertProductV1, idFromBody("sku", "/v1/products/")),
}

// preparer is commandRoute.prepare.
type preparer = func(ctx context.Context, s *Server, r *http.Request, p auth.Principal, doc map[string]any, commandID string) (target, *Problem)

// upsert is a command endpoint with one schema version whose aggregate id
// alone names its read model and that any caller with the scope may send.
func upsert(pattern, summary, scope, class, ceType string, prepare preparer) *commandRoute {
	return &commandRoute{pattern: pattern, summary: summary, scope: scope, class: class,
		types: map[int]string{1: ceType}, prepare: prepare}
}

// idFromBody takes the aggregate id from the body field name; its read
// model is at location + id.
func idFromBody(name, location string) preparer {
	return func(_ context.Context, _ *Server, _ *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
		id, _ := doc[name].(string)
		return target{aggregateID: id, location: location + url.PathEscape(id)}, nil
	}
}

// idFromPath takes the aggregate id from the path parameter name and puts
// it into the body field of the same name (refusing a body that differs);
// its read model is at location + id.
func idFromPath(name, location string) preparer {
	return func(_ context.Context, _ *Server, r *http.Request, _ auth.Principal, doc map[string]any, _ string) (target, *Problem) {
		id := r.PathValue(name)
		tgt := target{aggregateID: id, location: location + url.PathEscape(id), fromPath: map[string]string{"/" + name: name}}
		return tgt, fromPath(doc, name, id)
	}
}
