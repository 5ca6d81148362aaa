package payments

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
)

// Payment statuses (payments.payments.status) the handlers branch on or set.
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
		FROM payments.payments WHERE order_id = $1 FOR UPDATE`, orderID).
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

// lockPayments is lockPayment for a batch: one statement reads the rows
// of orderIDs FOR UPDATE, locking them in order_id order (the lock is
// taken above the sort), so two batches that share orders cannot
// deadlock on them. The map is keyed by the ids as given; an order
// without a row is absent.
func lockPayments(ctx context.Context, tx pgx.Tx, orderIDs []string) (map[string]payment, error) {
	rows, err := tx.Query(ctx, `
		SELECT u.k, p.status, p.currency, p.amount, p.authorization_id, p.order_cancelled
		FROM payments.payments p JOIN unnest($1::text[]) AS u(k) ON p.order_id = u.k::uuid
		ORDER BY p.order_id
		FOR UPDATE OF p`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("payments of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	out := make(map[string]payment, len(orderIDs))
	for rows.Next() {
		var p payment
		var currency, auth *string
		if err := rows.Scan(&p.orderID, &p.status, &currency, &p.amount, &auth, &p.orderCancelled); err != nil {
			return nil, fmt.Errorf("payments of %d orders: %w", len(orderIDs), err)
		}
		if currency != nil {
			p.currency = *currency
		}
		if auth != nil {
			p.authorizationID = *auth
		}
		out[p.orderID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payments of %d orders: %w", len(orderIDs), err)
	}
	return out, nil
}

// distinct returns ids without repeats, first occurrence first.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// paymentOp is a successful provider operation to note in payments.payment_ops.
type paymentOp struct {
	orderID, op, providerID, key string
	amount                       int64
	eventID                      string
}

// recordOps is recordOp's INSERT for a batch, in one statement. It does
// not move the payments' status: updatePayments does, with the batch's
// other changes.
func recordOps(ctx context.Context, tx pgx.Tx, ops []paymentOp) error {
	if len(ops) == 0 {
		return nil
	}
	order, op, providerID, key, eventID := make([]string, len(ops)), make([]string, len(ops)), make([]string, len(ops)), make([]string, len(ops)), make([]string, len(ops))
	amount := make([]int64, len(ops))
	for i, o := range ops {
		order[i], op[i], providerID[i], key[i], amount[i], eventID[i] = o.orderID, o.op, o.providerID, o.key, o.amount, o.eventID
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO payments.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
		SELECT o::uuid, x, p, k, a, e
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) WITH ORDINALITY AS u(o, x, p, k, a, e, n)
		ORDER BY n`, order, op, providerID, key, amount, eventID); err != nil {
		return fmt.Errorf("record %d payment operations (first: %s of order %s): %w", len(ops), ops[0].op, ops[0].orderID, err)
	}
	return nil
}

// paymentChange is the change a batch makes to one locked payment row;
// nil fields keep their value. A status change also sets updated_at (as
// recordDecline and recordOp do); confirm sets order_confirmed.
type paymentChange struct {
	orderID                              string
	status, authorizationID, declineCode *string
	confirm                              bool
}

// updatePayments applies changes, at most one per order, in one
// statement, and fails unless every order has a row.
func updatePayments(ctx context.Context, tx pgx.Tx, changes []paymentChange) error {
	if len(changes) == 0 {
		return nil
	}
	n := len(changes)
	order := make([]string, n)
	status, auth, code := make([]*string, n), make([]*string, n), make([]*string, n)
	confirm := make([]bool, n)
	seen := make(map[string]bool, n)
	for i, c := range changes {
		if seen[c.orderID] {
			// UPDATE ... FROM would apply only one of the two.
			return fmt.Errorf("update payments: order %s changed twice in one batch", c.orderID)
		}
		seen[c.orderID] = true
		order[i], status[i], auth[i], code[i], confirm[i] = c.orderID, c.status, c.authorizationID, c.declineCode, c.confirm
	}
	tag, err := tx.Exec(ctx, `
		UPDATE payments.payments p SET
			status = COALESCE(u.s, p.status),
			authorization_id = COALESCE(u.a, p.authorization_id),
			decline_code = COALESCE(u.d, p.decline_code),
			order_confirmed = p.order_confirmed OR u.c,
			updated_at = CASE WHEN u.s IS NULL THEN p.updated_at ELSE now() END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[]) AS u(o, s, a, d, c)
		WHERE p.order_id = u.o::uuid`, order, status, auth, code, confirm)
	if err != nil {
		return fmt.Errorf("update payments of %d orders (first: %s): %w", n, order[0], err)
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("update payments: %d of %d orders have a payment row", tag.RowsAffected(), n)
	}
	return nil
}

// providerCallLimit bounds the provider calls one batch has in flight.
const providerCallLimit = 8

// callProvider makes call(i) for every message i whose action is want,
// concurrently (see concurrently; at most providerCallLimit at once):
// calls are those indices, in order, and answers[i] what call(i)
// returned (the zero value for the messages not called).
func callProvider[A comparable, R any](acts []A, want A, call func(i int) (R, error)) (calls []int, answers []R, err error) {
	for i, a := range acts {
		if a == want {
			calls = append(calls, i)
		}
	}
	answers = make([]R, len(acts))
	err = concurrently(len(calls), providerCallLimit, func(j int) error {
		i := calls[j]
		r, err := call(i)
		answers[i] = r
		return err
	})
	return calls, answers, err
}

// concurrently runs call(0..n-1), at most limit at a time, and returns
// their errors joined. Once a call has failed, calls not yet started are
// skipped (the batch fails anyway, and the per-message path makes them).
// Calls in flight are never cancelled: each runs to its end, as it would
// one after another, and concurrently returns only after every call has
// returned, so no request of a failed batch is still running when the
// per-message path starts.
func concurrently(n, limit int, call func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, max(limit, 1))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		if failed.Load() {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if errs[i] = call(i); errs[i] != nil {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// recordOp notes a successful provider operation in payments.payment_ops (at
// most one per order and op) and moves the payment to status.
func recordOp(ctx context.Context, tx pgx.Tx, orderID, op, providerID, key string, amount int64, eventID, status string) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO payments.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, orderID, op, providerID, key, amount, eventID); err != nil {
		return fmt.Errorf("record %s of order %s: %w", op, orderID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE payments.payments SET status = $2, updated_at = now() WHERE order_id = $1`, orderID, status); err != nil {
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

// planPayments runs a payment transition over a batch in stream order:
// acts[i] is the action for orderIDs[i] and before[i] the payment it saw,
// each order starting from its locked payment in ps and going on from
// what the earlier messages of the batch made of it. ok is false when an
// order has no payment row or a message needs the action the batch
// leaves to Handle (handOff).
func planPayments[A comparable](ps map[string]payment, orderIDs []string, decide func(payment) (A, payment), handOff A) (acts []A, before []payment, ok bool) {
	state := make(map[string]payment, len(ps))
	acts, before = make([]A, len(orderIDs)), make([]payment, len(orderIDs))
	for i, id := range orderIDs {
		p, seen := state[id]
		if !seen {
			if p, seen = ps[id]; !seen {
				return nil, nil, false
			}
		}
		before[i] = p
		acts[i], state[id] = decide(p)
		if acts[i] == handOff {
			return nil, nil, false
		}
	}
	return acts, before, true
}

// cancelChange is the change a batch of cancellations makes to one
// locked payment row: it is marked order_cancelled, and moved to status
// unless status is nil (a status change also sets updated_at, as
// recordOp does; marking alone does not, as Handle's UPDATE does not).
type cancelChange struct {
	orderID string
	status  *string
}

// cancelPayments applies changes, at most one per order, in one
// statement, and fails unless every order has a row.
func cancelPayments(ctx context.Context, tx pgx.Tx, changes []cancelChange) error {
	if len(changes) == 0 {
		return nil
	}
	n := len(changes)
	order, status := make([]string, n), make([]*string, n)
	seen := make(map[string]bool, n)
	for i, c := range changes {
		if seen[c.orderID] {
			// UPDATE ... FROM would apply only one of the two.
			return fmt.Errorf("cancel payments: order %s changed twice in one batch", c.orderID)
		}
		seen[c.orderID] = true
		order[i], status[i] = c.orderID, c.status
	}
	tag, err := tx.Exec(ctx, `
		UPDATE payments.payments p SET
			order_cancelled = true,
			status = COALESCE(u.s, p.status),
			updated_at = CASE WHEN u.s IS NULL THEN p.updated_at ELSE now() END
		FROM unnest($1::text[], $2::text[]) AS u(o, s)
		WHERE p.order_id = u.o::uuid`, order, status)
	if err != nil {
		return fmt.Errorf("cancel payments of %d orders (first: %s): %w", n, order[0], err)
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("cancel payments: %d of %d orders have a payment row", tag.RowsAffected(), n)
	}
	return nil
}
