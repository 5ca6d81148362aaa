package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/internal/auth"
)

// placeOrderV1Sunset is when v1 of PlaceOrder may stop being accepted over
// HTTP (it stays readable in the stream forever: events.Upcast).
const placeOrderV1Sunset = "Wed, 30 Jun 2027 00:00:00 GMT"

// placeOrderV2Shipped is when v2 of PlaceOrder shipped (Deprecation on v1).
const placeOrderV2Shipped = 1795046400 // 2026-11-19T00:00:00Z

// preparePlaceOrder assigns the order id when the producer chose none
// (derived from the command id, so retries name the same order) and binds
// a customer's order to the customer: a user token may place orders only
// for its own subject (customer_id defaults to it).
func preparePlaceOrder(_ context.Context, _ *Server, _ *http.Request, p auth.Principal, doc map[string]any, commandID string) (target, *Problem) {
	if p.Kind == auth.KindUser && p.Role != auth.RoleOps {
		cust, present := doc["customer_id"]
		if !present {
			doc["customer_id"] = p.Subject
		} else if cust != p.Subject {
			return target{}, problem(http.StatusForbidden, "forbidden", "Forbidden",
				"a customer can place orders only for themselves").field("/customer_id", "body")
		}
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
