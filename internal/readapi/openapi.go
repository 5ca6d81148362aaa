package readapi

// OpenAPI describes the read routes for the gateway's OpenAPI document
// (internal/api.OpenAPIDocument merges them): paths, and the schemas they
// refer to as "#/components/schemas/<name>". Problems refer to the
// document's Problem schema. internal/api's TestRouterAndDocumentAgree
// checks these paths against the routes Register adds.
func OpenAPI() (paths, schemas map[string]any) {
	type obj = map[string]any
	ref := func(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }
	problem := func(desc string) obj {
		return obj{"description": desc, "content": obj{"application/problem+json": obj{"schema": ref("Problem")}}}
	}
	str := func(desc string) obj { return obj{"type": "string", "description": desc} }
	nullable := func(t, desc string) obj { return obj{"type": []string{t, "null"}, "description": desc} }
	query := func(name, desc string, schema obj) obj {
		return obj{"name": name, "in": "query", "description": desc, "schema": schema}
	}
	path := func(name, desc string, schema obj) obj {
		return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": schema}
	}
	after := []any{
		query("after", "Position token (an EVENTS position, or the COMMANDS:<seq> of a gateway 202): wait, at most 2 s, until this read model reflects it; else 503 with Retry-After.",
			obj{"type": "string", "pattern": "^(COMMANDS:)?[0-9]+$"}),
		obj{"name": HeaderAfter, "in": "header", "description": "The same as ?after=.", "schema": obj{"type": "string", "pattern": "^(COMMANDS:)?[0-9]+$"}},
	}
	limit := func(def, max int) obj {
		return query("limit", "Page size.", obj{"type": "integer", "minimum": 1, "maximum": max, "default": def})
	}
	orderID := path("id", "The order id.", obj{"type": "string", "format": "uuid"})
	ok := func(desc, schema string) obj {
		return obj{"description": desc,
			"headers": obj{HeaderPosition: obj{"description": "The EVENTS position this answer reflects (the read model's checkpoint, in the same snapshot as the data).",
				"schema": obj{"type": "string"}}},
			"content": obj{"application/json": obj{"schema": ref(schema)}}}
	}
	format := query("format", "json (the default) or csv: RFC 4180 with a header row of the JSON rows' field names (a text cell starting with = + - @ is prefixed with an apostrophe).",
		obj{"type": "string", "enum": []string{"json", "csv"}, "default": "json"})
	table := func(desc, schema string) obj {
		r := ok(desc, schema)
		r["content"].(obj)["text/csv"] = obj{"schema": obj{"type": "string"}}
		return r
	}
	op := func(id, summary, desc string, params []any, okResp obj, extra obj) obj {
		responses := obj{
			"200": okResp,
			"400": problem("A malformed parameter (the problem's detail names it)."),
			"401": problem("No, invalid, expired or revoked credentials (WWW-Authenticate: Bearer)."),
			"403": problem("The caller may not read this resource (a customer asking for another's data, a customer asking for analytics, a key without the read scope)."),
			"429": problem("This client failed to authenticate too often recently; its credentials were not checked (Retry-After)."),
			"503": problem("The read model has not reached the requested position yet (Retry-After), it is stale: built from another incarnation of the EVENTS stream (`tradewind projections rebuild --all`), or the credentials cannot be checked right now."),
		}
		for k, v := range extra {
			responses[k] = v
		}
		return obj{"get": obj{"operationId": id, "summary": summary, "description": desc, "tags": []string{"reads"},
			"parameters": append(params, after...), "responses": responses}}
	}
	notFound := func(what string) obj { return obj{"404": problem(what + " does not exist, or is not the caller's.")} }

	paths = obj{
		"/v1/orders/{id}": op("getOrder", "An order",
			"The order as the orders read model has it. A customer's token reads only the customer's own orders. With as_of (valid time) or as_of_position (transaction time) the order's state is replayed from its timeline.",
			[]any{orderID,
				query("as_of", "What the order looked like at this time (RFC 3339).", obj{"type": "string", "format": "date-time"}),
				query("as_of_position", "What the order looked like after the events up to this EVENTS position.", obj{"type": "integer", "minimum": 0})},
			ok("The order.", "Order"), notFound("The order")),
		"/v1/orders": op("listOrders", "Orders, newest first",
			"Keyset pages: pass back next_cursor. A customer's token lists only the customer's own orders.",
			[]any{query("customer_id", "Only this customer's orders.", obj{"type": "string", "maxLength": 100}),
				query("status", "Only orders in this status.", obj{"type": "string", "enum": []string{"pending", "confirmed", "cancelled"}}),
				limit(20, 100),
				query("cursor", "The next_cursor of the previous page.", obj{"type": "string"})},
			ok("A page of orders.", "OrderPage"), nil),
		"/v1/orders/{id}/timeline": op("getOrderTimeline", "An order's saga, step by step",
			"Every event of the order's saga in stream order, with the time since the previous step and since placement.",
			[]any{orderID}, ok("The timeline.", "OrderTimeline"), notFound("The order")),
		"/v1/inventory/{sku}": op("getInventory", "Stock of a product",
			"On hand, reserved, available and the low-stock flag, from the inventory read model.",
			[]any{path("sku", "Stock keeping unit.", obj{"type": "string", "minLength": 1, "maxLength": 64})},
			ok("The stock.", "Stock"), notFound("The SKU")),
		"/v1/products/{sku}": op("getProduct", "A product",
			"The product as the catalogue read model has it: the Location of POST /v1/products.",
			[]any{path("sku", "Stock keeping unit.", obj{"type": "string", "minLength": 1, "maxLength": 64})},
			ok("The product.", "Product"), notFound("The product")),
		"/v1/products/search": op("searchProducts", "Full-text product search",
			"Web-search syntax (quotes, OR, -word); hits ranked by name, then category, then description.",
			[]any{query("q", "The search.", obj{"type": "string", "minLength": 1, "maxLength": 200}), limit(20, 100)},
			ok("The hits, best first.", "ProductList"), nil),
		"/v1/products/autocomplete": op("autocompleteProducts", "Product names by prefix",
			"Names starting with the prefix, then the most similar ones (typos).",
			[]any{query("prefix", "What the user typed.", obj{"type": "string", "minLength": 1, "maxLength": 100}), limit(10, 50)},
			ok("The suggestions.", "ProductList"), nil),
		"/v1/customers/{id}/history": op("getCustomerHistory", "A customer's versions",
			"Every version of the customer (slowly changing dimension, type 2); with as_of, the version valid then.",
			[]any{path("id", "The customer id.", obj{"type": "string", "minLength": 1, "maxLength": 100}),
				query("as_of", "Only the version valid at this time (RFC 3339).", obj{"type": "string", "format": "date-time"})},
			ok("The versions, oldest first.", "CustomerHistory"), notFound("The customer")),
		"/v1/analytics/sales": op("getSales", "Sales per day",
			"Per day and currency, optionally for one category and its descendants, with running totals and 7-day moving averages. Staff only (API keys with analytics:read, operators).",
			[]any{query("from", "First day (YYYY-MM-DD).", obj{"type": "string", "format": "date"}),
				query("to", "Last day (YYYY-MM-DD); at most ten years after from.", obj{"type": "string", "format": "date"}),
				query("category", "A category id: it and its descendants.", obj{"type": "string", "maxLength": 100}),
				format},
			table("The days.", "Sales"), nil),
		"/v1/analytics/categories": op("getCategoryRollup", "Revenue rolled up the category tree",
			"Every category of the tree (path from its root, depth: root 0) for every currency sold in, with the revenue and units of it and all its descendants, and its own revenue; zero where nothing sold. Depth first: a parent before its subtree, siblings by id. Staff only (API keys with analytics:read, operators).",
			[]any{format}, table("The categories.", "CategoryRollup"), nil),
		"/v1/analytics/pivot": op("getSalesPivot", "Sales metrics per category as columns",
			"One row per category and currency (not rolled up): total, last 7 and 30 days' revenue (counted back from today), orders, units, average order revenue. By currency, then revenue, highest first. Staff only (API keys with analytics:read, operators).",
			[]any{format}, table("The categories.", "SalesPivot"), nil),
		"/v1/analytics/duplicates": op("getDuplicateCustomers", "Suspected duplicate customers",
			"Current customers sharing an email (case and surrounding spaces ignored) or a normalised name with an older one (keep_id, the oldest of the group). Personal data: API keys need both analytics:read and customers:read; operators may read it.",
			[]any{limit(1000, 10000), format}, table("The suspected duplicates, by match and key.", "DuplicateCustomers"), nil),
	}

	timestamp := obj{"type": "string", "format": "date-time"}
	schemas = obj{
		"Order": obj{"type": "object",
			"required": []string{"order_id", "customer_id", "status", "currency", "total", "item_count", "lines", "placed_at", "deadline", "updated_at", "position"},
			"properties": obj{
				"order_id": obj{"type": "string", "format": "uuid"}, "customer_id": obj{"type": "string"},
				"status":   obj{"type": "string", "enum": []string{"pending", "confirmed", "cancelled"}},
				"currency": obj{"type": "string"}, "total": obj{"type": "integer", "description": "Minor units."},
				"item_count": obj{"type": "integer"},
				"lines": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
					"sku": obj{"type": "string"}, "quantity": obj{"type": "integer"}, "unit_price": obj{"type": "integer"}}}},
				"stock_status":     nullable("string", "reserved, rejected, committed, released, returned"),
				"payment_status":   nullable("string", "authorized, declined, captured, voided, refunded"),
				"authorization_id": str("The provider's authorization."),
				"cancel_reason":    nullable("string", "out_of_stock, payment_declined, customer, timeout"),
				"placed_at":        timestamp, "deadline": timestamp,
				"confirmed_at": obj{"type": []string{"string", "null"}, "format": "date-time"},
				"cancelled_at": obj{"type": []string{"string", "null"}, "format": "date-time"},
				"updated_at":   timestamp,
				"position":     obj{"type": "integer", "description": "EVENTS position of the last event applied to the order."},
				"as_of":        obj{"type": "string", "format": "date-time", "description": "With as_of: the time replayed to."},
			}},
		"OrderPage": obj{"type": "object", "required": []string{"orders"}, "properties": obj{
			"orders":      obj{"type": "array", "items": ref("Order")},
			"next_cursor": str("Absent on the last page."),
		}},
		"OrderTimeline": obj{"type": "object", "required": []string{"order_id", "steps"}, "properties": obj{
			"order_id": obj{"type": "string", "format": "uuid"},
			"steps": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"step", "type", "event_id", "at", "since_prev_ms", "since_placed_ms", "position"},
				"properties": obj{
					"step": obj{"type": "string"}, "type": str("The CloudEvent type."), "event_id": obj{"type": "string"},
					"at": timestamp, "since_prev_ms": obj{"type": "integer"}, "since_placed_ms": obj{"type": "integer"},
					"position": obj{"type": "integer"}, "detail": obj{"description": "The event's data."},
				}}},
		}},
		"Stock": obj{"type": "object", "required": []string{"sku", "on_hand", "reserved", "available", "reorder_level", "low_stock", "updated_at"},
			"properties": obj{
				"sku": obj{"type": "string"}, "on_hand": obj{"type": "integer"}, "reserved": obj{"type": "integer"},
				"available": obj{"type": "integer"}, "reorder_level": obj{"type": "integer"}, "low_stock": obj{"type": "boolean"},
				"updated_at": timestamp,
			}},
		"Product": obj{"type": "object", "required": []string{"sku", "name", "category_name", "price", "currency"},
			"properties": obj{
				"sku": obj{"type": "string"}, "name": obj{"type": "string"}, "description": obj{"type": "string"},
				"category_id": nullable("string", "The product's category."), "category_name": obj{"type": "string"},
				"price": obj{"type": "integer", "description": "Minor units."}, "currency": obj{"type": "string"},
				"rank": obj{"type": "number", "description": "Search relevance (search only)."},
				"images": obj{"type": "array", "items": ref("ProductImage"),
					"description": "The product's images, oldest first (not in autocomplete suggestions)."},
			}},
		"ProductImage": obj{"type": "object", "required": []string{"hash", "content_type", "width", "height", "bytes", "url", "thumbnails"},
			"properties": obj{
				"hash":         obj{"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "Hex SHA-256 of the original: its address."},
				"content_type": obj{"type": "string", "enum": []string{"image/jpeg", "image/png", "image/webp"}},
				"width":        obj{"type": "integer"}, "height": obj{"type": "integer"},
				"bytes": obj{"type": "integer", "description": "The original's size."},
				"url":   str("The original (GET /v1/images/{hash}/{file}: public, immutable)."),
				"thumbnails": obj{"type": "array", "description": "Narrowest first; for srcset.", "items": obj{"type": "object",
					"required":   []string{"width", "height", "url"},
					"properties": obj{"width": obj{"type": "integer"}, "height": obj{"type": "integer"}, "url": obj{"type": "string"}}}},
			}},
		"ProductList": obj{"type": "object", "required": []string{"products"}, "properties": obj{
			"products": obj{"type": "array", "items": ref("Product")},
		}},
		"CustomerHistory": obj{"type": "object", "required": []string{"customer_id", "versions"}, "properties": obj{
			"customer_id": obj{"type": "string"},
			"versions": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"customer_id", "version", "email", "name", "segment", "country", "valid_from", "is_current"},
				"properties": obj{
					"customer_id": obj{"type": "string"}, "version": obj{"type": "integer"}, "email": obj{"type": "string"},
					"name": obj{"type": "string"}, "segment": obj{"type": "string"}, "country": obj{"type": "string"},
					"valid_from": timestamp, "valid_to": obj{"type": []string{"string", "null"}, "format": "date-time", "description": "null while current"},
					"is_current": obj{"type": "boolean"},
				}}},
		}},
		"Sales": obj{"type": "object", "required": []string{"days"}, "properties": obj{
			"days": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"day", "currency", "orders", "units", "revenue", "revenue_running_total", "revenue_7d_avg", "orders_7d_avg"},
				"properties": obj{
					"day": obj{"type": "string", "format": "date"}, "currency": obj{"type": "string"},
					"orders": obj{"type": "integer"}, "units": obj{"type": "integer"}, "revenue": obj{"type": "integer"},
					"revenue_running_total": obj{"type": "integer"}, "revenue_7d_avg": obj{"type": "number"}, "orders_7d_avg": obj{"type": "number"},
				}}},
		}},
		"CategoryRollup": obj{"type": "object", "required": []string{"categories"}, "properties": obj{
			"categories": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"category_id", "parent_id", "name", "depth", "path", "currency", "revenue", "units", "own_revenue"},
				"properties": obj{
					"category_id": obj{"type": "string"}, "parent_id": nullable("string", "null for a root"),
					"name": obj{"type": "string"}, "depth": obj{"type": "integer", "description": "0 for a root"},
					"path": str("Names from the root, e.g. Electronics > Phones."), "currency": obj{"type": "string"},
					"revenue":     obj{"type": "integer", "description": "Minor units, the category and all its descendants."},
					"units":       obj{"type": "integer", "description": "The category and all its descendants."},
					"own_revenue": obj{"type": "integer", "description": "Minor units, the category's own products only."},
				}}},
		}},
		"SalesPivot": obj{"type": "object", "required": []string{"categories"}, "properties": obj{
			"categories": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"category_id", "path", "currency", "revenue_total", "revenue_7d", "revenue_30d", "orders_total", "units_total", "avg_order_revenue"},
				"properties": obj{
					"category_id": str("Empty for products without a category."), "path": nullable("string", "null when the category is not in the tree"),
					"currency": obj{"type": "string"}, "revenue_total": obj{"type": "integer"}, "revenue_7d": obj{"type": "integer"},
					"revenue_30d": obj{"type": "integer"}, "orders_total": obj{"type": "integer"}, "units_total": obj{"type": "integer"},
					"avg_order_revenue": nullable("number", "Revenue per order, minor units; null without orders."),
				}}},
		}},
		"DuplicateCustomers": obj{"type": "object", "required": []string{"duplicates"}, "properties": obj{
			"duplicates": obj{"type": "array", "items": obj{"type": "object",
				"required": []string{"matched_on", "match_key", "customer_id", "email", "name", "rn", "keep_id"},
				"properties": obj{
					"matched_on": obj{"type": "string", "enum": []string{"email", "name"}}, "match_key": str("The email or name as compared."),
					"customer_id": obj{"type": "string"}, "email": obj{"type": "string"}, "name": obj{"type": "string"},
					"rn":      obj{"type": "integer", "description": "Rank in the group by age: 2 for the first duplicate."},
					"keep_id": str("The oldest customer of the group."),
				}}},
		}},
	}
	return paths, schemas
}
