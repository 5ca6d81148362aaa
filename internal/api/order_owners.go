package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOrders answers OrderOwners from the order aggregate's write
// model (orders.orders). An order accepted but not yet placed by the orders
// consumer is not found yet.
type PostgresOrders struct{ Pool *pgxpool.Pool }

// OrderOwner implements OrderOwners.
func (o PostgresOrders) OrderOwner(ctx context.Context, orderID string) (string, bool, error) {
	var customer string
	err := o.Pool.QueryRow(ctx, `SELECT customer_id FROM orders.orders WHERE order_id = $1`, orderID).Scan(&customer)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("order owner of %s: %w", orderID, err)
	}
	return customer, true, nil
}
