package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
)

// Payment statuses (core.payments.status) the handlers branch on or set.
const (
	payNew        = "new"
	payAuthorized = "authorized"
	payCaptured   = "captured"
	payVoided     = "voided"
	payRefunded   = "refunded"
)

// payment is the payments participant's row of an order, locked.
type payment struct {
	orderID, status, currency, authorizationID string
	amount                                     int64
	orderCancelled                             bool
}

// lockPayment reads the payment row FOR UPDATE; ok is false when there is
// none. The lock serialises the payments reactions to one order, even
// across instances, including the provider call each makes while holding it.
func lockPayment(ctx context.Context, tx pgx.Tx, orderID string) (p payment, ok bool, err error) {
	p.orderID = orderID
	var currency, auth *string
	err = tx.QueryRow(ctx, `
		SELECT status, currency, amount, authorization_id, order_cancelled
		FROM core.payments WHERE order_id = $1 FOR UPDATE`, orderID).
		Scan(&p.status, &currency, &p.amount, &auth, &p.orderCancelled)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("payment of order %s: %w", orderID, err)
	}
	if currency != nil {
		p.currency = *currency
	}
	if auth != nil {
		p.authorizationID = *auth
	}
	return p, true, nil
}

// recordOp notes a successful provider operation in core.payment_ops (at
// most one per order and op) and moves the payment to status.
func recordOp(ctx context.Context, tx pgx.Tx, orderID, op, providerID, key string, amount int64, eventID, status string) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO core.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, orderID, op, providerID, key, amount, eventID); err != nil {
		return fmt.Errorf("record %s of order %s: %w", op, orderID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE core.payments SET status = $2, updated_at = now() WHERE order_id = $1`, orderID, status); err != nil {
		return fmt.Errorf("record %s of order %s: %w", op, orderID, err)
	}
	return nil
}

// providerError classifies a provider failure for the runner: while the
// provider is unavailable (breaker open, 5xx, timeouts) the message waits
// for a delayed redelivery that does not count as a failure of the saga;
// a refused request (the provider says it is wrong) is permanent;
// anything else is retried with backoff.
func providerError(what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	var u *provider.UnavailableError
	switch {
	case errors.As(err, &u):
		return runner.RetryAfter(err, max(u.RetryAfter, minProviderRetry))
	case errors.Is(err, provider.ErrRefused):
		return runner.Permanent(err)
	}
	return err
}

// minProviderRetry floors the redelivery delay while the provider is down.
const minProviderRetry = 100 * time.Millisecond
