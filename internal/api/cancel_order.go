package api

import (
	"context"
	"net/http"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/httpx"
)

// prepareCancelOrder takes the order id from the path. A customer may
// cancel only their own orders; another customer's order and an unknown
// one both answer 404, so ids leak nothing.
func prepareCancelOrder(ctx context.Context, s *Server, r *http.Request, p auth.Principal, doc map[string]any, _ string) (target, *Problem) {
	id := r.PathValue("id")
	tgt := target{aggregateID: id, location: "/v1/orders/" + id, fromPath: map[string]string{"/order_id": "id"}}
	if prob := fromPath(doc, "order_id", id); prob != nil {
		return tgt, prob
	}
	if p.Kind == auth.KindUser && p.Role != auth.RoleOps {
		if _, err := httpx.ParseUUID(id); err != nil {
			return tgt, nil // schema validation names the bad path parameter (urn:uuid:… included)
		}
		owner, found, err := s.d.Orders.OrderOwner(ctx, id)
		if err != nil {
			s.log.Warn("look up order owner", "request_id", requestIDFrom(ctx), "err", err)
			return tgt, unavailable("the order cannot be checked right now")
		}
		if !found || owner != p.Subject {
			return tgt, problem(http.StatusNotFound, "not-found", "Not found", "no such order")
		}
	}
	return tgt, nil
}

// fromPath puts a path parameter into the body, refusing a body that
// says otherwise.
func fromPath(doc map[string]any, name, value string) *Problem {
	if v, ok := doc[name]; ok && v != value {
		return problem(http.StatusUnprocessableEntity, "invalid-field", "Invalid request body",
			"/"+name+" differs from the path; omit it from the body").field("/"+name, "body")
	}
	doc[name] = value
	return nil
}
