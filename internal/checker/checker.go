// Package checker proves the order saga's invariants on a running (or
// stopped) Tradewind: it reads PostgreSQL's core tables, and where given
// them the EVENTS stream and the payment provider's ledger, and reports
// every violation with the order or SKU at fault.
//
// It is independent of the saga's code: it knows only the contract in
// sagas/README.md (tables, event types, paths, the provider's API). Every
// check is one SQL query (checks.go) run in one read-only repeatable-read
// transaction, so all checks see the same snapshot.
//
// Hazard: a live system is never entirely at rest. Checks that need an
// order at rest skip orders that changed less than Options.Settle ago;
// the stock-at-rest check runs only when no order is pending or in
// flight. Run with Settle 0 only once the system is quiescent.
package checker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/provider"
)

// Defaults of Options.
const (
	DefaultSlack  = 5 * time.Second
	DefaultSettle = 10 * time.Second
)

// Querier is what the checks read through: a transaction. Run opens a
// read-only repeatable-read one on the pool; RunIn takes the caller's.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// LedgerSource returns the payment provider's ledger.
type LedgerSource interface {
	Ledger(ctx context.Context) (provider.Ledger, error)
}

// Options configure a Checker. Pool is required; JS and Ledger are
// optional, and the checks that need them are reported as skipped when
// they are nil.
type Options struct {
	Pool   *pgxpool.Pool
	JS     jetstream.JetStream
	Ledger LedgerSource
	// Slack is how long past its deadline a pending order may still be
	// pending (the deadline sweeper's period plus the relay's delay).
	Slack time.Duration
	// Settle is how long after its last change an order counts as at rest.
	Settle time.Duration
}

// Checker runs the invariant checks.
type Checker struct {
	opts Options
}

// New validates the options.
func New(opts Options) (*Checker, error) {
	if opts.Pool == nil {
		return nil, errors.New("checker: a PostgreSQL pool is required")
	}
	if opts.Slack < 0 || opts.Settle < 0 {
		return nil, fmt.Errorf("checker: slack %s and settle %s must not be negative", opts.Slack, opts.Settle)
	}
	return &Checker{opts: opts}, nil
}

// Violation is one broken invariant.
type Violation struct {
	Check   string `json:"check"`
	Subject string `json:"subject"` // "order <id>", "sku <sku>" or "event <id>"
	Message string `json:"message"`
}

func (v Violation) String() string { return v.Check + ": " + v.Subject + ": " + v.Message }

// Result is the outcome of one check.
type Result struct {
	Check      string `json:"check"`
	Doc        string `json:"doc"`
	Violations int    `json:"violations"`
	Skipped    string `json:"skipped,omitempty"` // why the check did not run
}

// Report is the outcome of a run.
type Report struct {
	Results    []Result    `json:"results"`
	Violations []Violation `json:"violations"`
	// What was looked at.
	Orders        int `json:"orders"`
	PendingOrders int `json:"pending_orders"`
	SKUs          int `json:"skus"`
	StreamEvents  int `json:"stream_events"`
	LedgerEntries int `json:"ledger_entries"`
}

// OK reports whether no check found a violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Print writes the violations, one a line, then one line per check.
func (r *Report) Print(w io.Writer) {
	for _, v := range r.Violations {
		fmt.Fprintln(w, "VIOLATION", v)
	}
	for _, res := range r.Results {
		switch {
		case res.Skipped != "":
			fmt.Fprintf(w, "  %-20s skipped: %s\n", res.Check, res.Skipped)
		case res.Violations > 0:
			fmt.Fprintf(w, "  %-20s %d violations  (%s)\n", res.Check, res.Violations, res.Doc)
		default:
			fmt.Fprintf(w, "  %-20s ok  (%s)\n", res.Check, res.Doc)
		}
	}
	status := "ok"
	if !r.OK() {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: %d violations; %d orders (%d pending), %d SKUs, %d stream events, %d ledger entries\n",
		status, len(r.Violations), r.Orders, r.PendingOrders, r.SKUs, r.StreamEvents, r.LedgerEntries)
}

// Run reads the stream and the ledger (when configured), then runs every
// check in one read-only repeatable-read transaction.
func (c *Checker) Run(ctx context.Context) (*Report, error) {
	tx, err := c.opts.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("check: begin snapshot: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return c.RunIn(ctx, tx)
}

// RunIn runs every check through q (tests pass a transaction holding a
// deliberately broken state). The database snapshot is taken first, then
// the stream and the ledger are read: every event of an order at rest in
// the snapshot was relayed before it (its outbox rows are gone), so it is
// on the stream; an event newer than the snapshot (stream timestamp after
// it) may belong to an order the snapshot does not hold yet and is left
// out of stream-orders.
func (c *Checker) RunIn(ctx context.Context, q Querier) (*Report, error) {
	rep := &Report{Violations: []Violation{}}
	snapshotAt, err := countRows(ctx, q, rep)
	if err != nil {
		return nil, err
	}
	var evJSON, ledgerJSON []byte
	var streamErr, ledgerErr error
	if c.opts.JS != nil {
		evs, err := ReadStream(ctx, c.opts.JS)
		if err != nil {
			streamErr = err
		} else {
			rep.StreamEvents = len(evs)
			if evJSON, err = jsonArray(evs); err != nil {
				return nil, fmt.Errorf("check: encode stream events: %w", err)
			}
		}
	}
	if c.opts.Ledger != nil {
		l, err := c.opts.Ledger.Ledger(ctx)
		if err != nil {
			ledgerErr = err
		} else {
			rep.LedgerEntries = len(l.Authorizations)
			if ledgerJSON, err = jsonArray(l.Authorizations); err != nil {
				return nil, fmt.Errorf("check: encode ledger: %w", err)
			}
		}
	}
	args := pgx.NamedArgs{
		"settle":   c.opts.Settle.Seconds(),
		"slack":    c.opts.Slack.Seconds(),
		"snapshot": snapshotAt,
		"events":   string(evJSON),
		"ledger":   string(ledgerJSON),
	}
	for _, ch := range checks {
		res := Result{Check: ch.Name, Doc: ch.Doc}
		switch {
		case ch.Needs == needStream && c.opts.JS == nil:
			res.Skipped = "no NATS connection"
		case ch.Needs == needStream && streamErr != nil:
			return nil, fmt.Errorf("check %s: %w", ch.Name, streamErr)
		case ch.Needs == needLedger && c.opts.Ledger == nil:
			res.Skipped = "no payment provider URL"
		case ch.Needs == needLedger && ledgerErr != nil:
			return nil, fmt.Errorf("check %s: %w", ch.Name, ledgerErr)
		default:
			vs, err := runCheck(ctx, q, ch, args)
			if err != nil {
				return nil, err
			}
			res.Violations = len(vs)
			rep.Violations = append(rep.Violations, vs...)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// jsonArray encodes s as a JSON array, an empty one when s is nil: the
// checks read @events and @ledger with jsonb_to_recordset, which refuses
// null (an empty stream or ledger is no error).
func jsonArray[T any](s []T) ([]byte, error) {
	if s == nil {
		s = []T{}
	}
	return json.Marshal(s)
}

func runCheck(ctx context.Context, q Querier, ch check, args pgx.NamedArgs) ([]Violation, error) {
	rows, err := q.Query(ctx, ch.SQL, args)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", ch.Name, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Violation, error) {
		v := Violation{Check: ch.Name}
		err := r.Scan(&v.Subject, &v.Message)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", ch.Name, err)
	}
	return vs, nil
}

// countRows takes the snapshot (the transaction's first statement) and
// returns the time its statement started: a message the stream stored
// before it was committed before the snapshot.
func countRows(ctx context.Context, q Querier, rep *Report) (time.Time, error) {
	var at time.Time
	rows, err := q.Query(ctx, `SELECT statement_timestamp(),
		(SELECT count(*) FROM orders.orders),
		(SELECT count(*) FROM orders.orders WHERE status = 'pending'),
		(SELECT count(*) FROM inventory.inventory)`)
	if err != nil {
		return at, fmt.Errorf("check: count rows: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&at, &rep.Orders, &rep.PendingOrders, &rep.SKUs); err != nil {
			return at, fmt.Errorf("check: count rows: %w", err)
		}
	}
	return at, rows.Err()
}

// Names lists the checks in the order they run, with their descriptions.
func Names() []Result {
	out := make([]Result, len(checks))
	for i, ch := range checks {
		out[i] = Result{Check: ch.Name, Doc: ch.Doc}
	}
	return out
}
