package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
)

// placeOrderV1Sunset is when v1 of PlaceOrder may stop being accepted over
// HTTP (it stays readable in the stream forever: events.Upcast).
const placeOrderV1Sunset = "Wed, 30 Jun 2027 00:00:00 GMT"

// placeOrderV2Shipped is when v2 of PlaceOrder shipped (Deprecation on v1).
const placeOrderV2Shipped = 1795046400 // 2026-11-19T00:00:00Z

func init() {
	commands = append(commands, &commandRoute{
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
	})
}

// preparePlaceOrder assigns the order id when the producer chose none
// (derived from the command id, so retries name the same order), binds
// a customer's order to the customer (a user token may place orders only
// for its own subject; customer_id defaults to it) and prices the lines:
//
//   - a caller without the orders:price scope (every user token, API keys
//     without it) gets every line priced from the catalog: unit_price may
//     be omitted, and when sent must equal the catalog's price (422
//     price-mismatch otherwise: a client showing a stale price is told,
//     not charged something else); an unknown SKU or a currency other than
//     the product's is 422 too. The published command carries the
//     catalog's prices, so the order records the price valid when it was
//     accepted;
//   - a caller with orders:price (B2B: negotiated prices) sends its own
//     prices, which are taken as they are;
//   - either way an order must total at least 1 minor unit (422
//     invalid-total), so no zero total reaches payments.
func preparePlaceOrder(ctx context.Context, s *Server, _ *http.Request, p auth.Principal, doc map[string]any, commandID string) (target, *Problem) {
	if p.Kind == auth.KindUser && p.Role != auth.RoleOps {
		cust, present := doc["customer_id"]
		if !present {
			doc["customer_id"] = p.Subject
		} else if cust != p.Subject {
			return target{}, problem(http.StatusForbidden, "forbidden", "Forbidden",
				"a customer can place orders only for themselves").field("/customer_id", "body")
		}
	}
	if !p.Can(auth.ScopeOrdersPrice) {
		if prob := s.priceFromCatalog(ctx, doc); prob != nil {
			return target{}, prob
		}
	}
	if prob := checkTotal(doc); prob != nil {
		return target{}, prob
	}
	id, ok := doc["order_id"].(string)
	if !ok || id == "" {
		if _, present := doc["order_id"]; !present {
			id = uuid.NewSHA1(aggregateNamespace, []byte(commandID)).String()
			doc["order_id"] = id
		}
	}
	return target{aggregateID: id, location: "/v1/orders/" + id}, nil
}

// orderLines returns the lines of a place-order document and, per line,
// its object and SKU (nil, "" for a malformed line: schema validation,
// which runs next, reports it precisely).
func orderLines(doc map[string]any) ([]map[string]any, []string) {
	raw, ok := doc["lines"].([]any)
	if !ok {
		return nil, nil
	}
	lines, skus := make([]map[string]any, len(raw)), make([]string, len(raw))
	for i, l := range raw {
		m, ok := l.(map[string]any)
		if !ok {
			continue
		}
		lines[i] = m
		skus[i], _ = m["sku"].(string)
	}
	return lines, skus
}

// priceFromCatalog stamps the catalog's price on every line of doc, or
// answers why it cannot (see preparePlaceOrder).
func (s *Server) priceFromCatalog(ctx context.Context, doc map[string]any) *Problem {
	lines, skus := orderLines(doc)
	var want []string
	for _, sku := range skus {
		if sku != "" {
			want = append(want, sku)
		}
	}
	if len(want) == 0 {
		return nil // nothing to price: validation reports the lines
	}
	prices, err := s.d.Catalog.Prices(ctx, want)
	if err != nil {
		s.log.Warn("catalog unavailable", "request_id", requestIDFrom(ctx), "err", err)
		return unavailable("the catalog cannot be read right now; the order was not accepted")
	}
	currency, _ := doc["currency"].(string)
	for i, m := range lines {
		if m == nil || skus[i] == "" {
			continue
		}
		at := "/lines/" + strconv.Itoa(i)
		price, ok := prices[skus[i]]
		if !ok {
			return problem(http.StatusUnprocessableEntity, "unknown-sku", "Unknown SKU",
				fmt.Sprintf("%q is not in the catalog (a product just added may take a moment to appear)", skus[i])).field(at+"/sku", "body")
		}
		if currency != "" && price.Currency != currency {
			return problem(http.StatusUnprocessableEntity, "currency-mismatch", "Currency mismatch",
				fmt.Sprintf("%q is priced in %s; the order is in %s", skus[i], price.Currency, currency)).field("/currency", "body")
		}
		if sent, present := m["unit_price"]; present {
			n, isNum := sent.(json.Number)
			if v, err := n.Int64(); !isNum || err != nil || v != price.Price {
				return problem(http.StatusUnprocessableEntity, "price-mismatch", "Price differs from the catalog",
					fmt.Sprintf("the catalog price of %q is %d minor units of %s; omit unit_price or send that price (only a key with the %s scope sets its own prices)",
						skus[i], price.Price, price.Currency, auth.ScopeOrdersPrice)).field(at+"/unit_price", "body")
			}
		}
		m["unit_price"] = json.Number(strconv.FormatInt(price.Price, 10))
	}
	return nil
}

// checkTotal refuses an order whose well-formed lines total less than 1
// minor unit (lines that are not yet well formed are left to validation).
func checkTotal(doc map[string]any) *Problem {
	lines, _ := orderLines(doc)
	if len(lines) == 0 || len(lines) > 100 { // beyond the schema's maxItems: validation says so
		return nil
	}
	var total int64
	for _, m := range lines {
		if m == nil {
			return nil
		}
		q, qok := m["quantity"].(json.Number)
		u, uok := m["unit_price"].(json.Number)
		if !qok || !uok {
			return nil
		}
		qv, qerr := q.Int64()
		uv, uerr := u.Int64()
		// Out-of-range values are the schema's to report; within its bounds
		// the sum cannot overflow.
		if qerr != nil || uerr != nil || qv < 1 || qv > 10_000 || uv < 0 || uv > 100_000_000 {
			return nil
		}
		total += qv * uv
	}
	if total < 1 {
		return problem(http.StatusUnprocessableEntity, "invalid-total", "Order total below 1",
			fmt.Sprintf("the lines total %d minor units; an order must total at least 1", total)).field("/lines", "body")
	}
	return nil
}
