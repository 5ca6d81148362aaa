package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// CustomersHistory maintains public.customers_history, a slowly changing
// dimension of type 2: one row per version of a customer, valid over
// [valid_from, valid_to). A change closes the current row (valid_to = the
// change's time, is_current = false) and opens a new one, in the batch's
// transaction; an upsert that changes nothing opens no version. An
// exclusion constraint (btree_gist) forbids overlapping periods.
//
// valid_from is the event's time. A change stamped at or before the
// current version's start (a producer's clock running behind) is placed
// one microsecond after it, so periods stay ordered and non-empty.
type CustomersHistory struct{}

var _ projector.Projection = CustomersHistory{}

// Name implements projector.Projection.
func (CustomersHistory) Name() string { return "customers_history" }

// Tables implements projector.Projection.
func (CustomersHistory) Tables() []string { return []string{"customers_history"} }

// Subjects implements projector.Projection.
func (CustomersHistory) Subjects() []string { return filters(events.CustomerUpsertedV1) }

type customerVersion struct {
	events.Customer
	version  int
	from, to time.Time
	eventID  string
	seq      uint64
}

// infinity stands for an open valid_to in Go; pgInfinity is what is written.
var (
	infinity   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	pgInfinity = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
)

func (v *customerVersion) same(c events.Customer) bool {
	return v.Email == c.Email && v.Name == c.Name && v.Segment == c.Segment && v.Country == c.Country
}

// Apply implements projector.Projection: it loads the current versions
// of the batch's customers, folds the changes in memory, closes the
// current rows with one UPDATE and COPYs the new versions.
func (CustomersHistory) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	ids := map[string]bool{}
	var idList []string
	for i := range b.Events {
		if id := b.Events[i].Subject; !ids[id] {
			ids[id] = true
			idList = append(idList, id)
		}
	}
	current := map[string]*customerVersion{}
	rows, err := tx.Query(ctx, `SELECT customer_id, version, email, name, segment, country, valid_from
		FROM `+b.Table("customers_history")+` WHERE customer_id = ANY($1) AND is_current`, idList)
	if err != nil {
		return fmt.Errorf("load current customers: %w", err)
	}
	for rows.Next() {
		v := &customerVersion{to: infinity}
		if err := rows.Scan(&v.CustomerID, &v.version, &v.Email, &v.Name, &v.Segment, &v.Country, &v.from); err != nil {
			rows.Close()
			return fmt.Errorf("load current customers: %w", err)
		}
		current[v.CustomerID] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load current customers: %w", err)
	}
	stored := map[string]*customerVersion{} // the stored current row, to close
	for id, v := range current {
		stored[id] = v
	}
	var opened []*customerVersion
	for i := range b.Events {
		ev := &b.Events[i]
		var c events.Customer
		if err := decode(ev, &c); err != nil {
			b.Reject(ev, err)
			continue
		}
		if c.CustomerID != ev.Subject {
			b.Reject(ev, fmt.Errorf("customer_id %q differs from the subject %q", c.CustomerID, ev.Subject))
			continue
		}
		cur := current[c.CustomerID]
		if cur != nil && cur.same(c) {
			continue
		}
		from := ev.Time
		nv := &customerVersion{Customer: c, version: 1, to: infinity, eventID: ev.ID, seq: ev.Seq}
		if cur != nil {
			if !from.After(cur.from) {
				from = cur.from.Add(time.Microsecond)
			}
			cur.to = from
			nv.version = cur.version + 1
		}
		nv.from = from
		current[c.CustomerID] = nv
		opened = append(opened, nv)
	}
	// Close the stored current rows that got a successor.
	var closeIDs []string
	var closeAt []time.Time
	for id, v := range stored {
		if !v.to.Equal(infinity) {
			closeIDs, closeAt = append(closeIDs, id), append(closeAt, v.to)
		}
	}
	if len(closeIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE `+b.Table("customers_history")+` AS t
			SET valid_to = s.valid_to, is_current = false
			FROM unnest($1::text[], $2::timestamptz[]) AS s(customer_id, valid_to)
			WHERE t.customer_id = s.customer_id AND t.is_current`, closeIDs, closeAt); err != nil {
			return fmt.Errorf("close customer versions: %w", err)
		}
	}
	out := make([][]any, len(opened))
	for i, v := range opened {
		to := any(v.to)
		if v.to.Equal(infinity) {
			to = pgInfinity
		}
		out[i] = []any{v.CustomerID, v.version, v.Email, v.Name, v.Segment, v.Country, v.from, to, v.to.Equal(infinity), v.eventID, int64(v.seq)}
	}
	return b.Copy(ctx, tx, "customers_history", []string{"customer_id", "version", "email", "name", "segment", "country",
		"valid_from", "valid_to", "is_current", "event_id", "last_seq"}, out)
}
