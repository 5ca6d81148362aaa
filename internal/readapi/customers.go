package readapi

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// CustomerVersion is one version of a customer (SCD type 2).
type CustomerVersion struct {
	CustomerID string     `json:"customer_id"`
	Version    int        `json:"version"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Segment    string     `json:"segment"`
	Country    string     `json:"country"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidTo    *time.Time `json:"valid_to"` // null while current
	IsCurrent  bool       `json:"is_current"`
}

// customerHistory: GET /v1/customers/{id}/history[?as_of=T]: every
// version, oldest first, or only the one valid at T.
func (a *API) customerHistory(r *request) (any, error) {
	id, err := pathText(r, "id", 100)
	if err != nil {
		return nil, err
	}
	if !r.mayRead(ScopeCustomers, id) {
		return nil, errNotFound("customer " + id)
	}
	asOf, err := timeParam(r, "as_of")
	if err != nil {
		return nil, err
	}
	rows, err := r.tx.Query(r.Context(), `SELECT customer_id, version, email, name, segment, country, valid_from, valid_to, is_current
		FROM public.customers_history
		WHERE customer_id = $1 AND ($2::timestamptz IS NULL OR (valid_from <= $2 AND $2 < valid_to))
		ORDER BY version`, id, asOf)
	if err != nil {
		return nil, fmt.Errorf("read customer %s: %w", id, err)
	}
	defer rows.Close()
	out := []CustomerVersion{}
	for rows.Next() {
		var v CustomerVersion
		var to pgtype.Timestamptz
		if err := rows.Scan(&v.CustomerID, &v.Version, &v.Email, &v.Name, &v.Segment, &v.Country, &v.ValidFrom, &to, &v.IsCurrent); err != nil {
			return nil, fmt.Errorf("read customer %s: %w", id, err)
		}
		if to.Valid && to.InfinityModifier == pgtype.Finite {
			t := to.Time
			v.ValidTo = &t
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read customer %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, errNotFound("customer " + id)
	}
	return map[string]any{"customer_id": id, "versions": out}, nil
}
