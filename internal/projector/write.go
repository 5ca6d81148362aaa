package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Helpers for set-based writes: a batch's rows go to PostgreSQL in one
// COPY or one statement over arrays, never one statement per event.

// Ident is the identifier of logical table name in the batch's version,
// for CopyFrom.
func (b *Batch) Ident(name string) pgx.Identifier {
	return pgx.Identifier{"proj", fmt.Sprintf("%s_v%d", name, b.version)}
}

// Copy inserts rows into the batch's version of table with COPY. Use it
// only for rows that cannot exist yet (new keys): COPY has no ON CONFLICT.
func (b *Batch) Copy(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	n, err := tx.CopyFrom(ctx, b.Ident(table), cols, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy %d rows into %s: %w", len(rows), table, err)
	}
	if int(n) != len(rows) {
		return fmt.Errorf("copy into %s: %d of %d rows", table, n, len(rows))
	}
	return nil
}

// Upsert writes rows given column-wise (one slice per column, all of one
// length) into the batch's version of table in one statement:
//
//	INSERT INTO t (cols) SELECT * FROM unnest($1::type[], ...)
//	ON CONFLICT (key) DO UPDATE SET <set>
//
// set is the SET list; "" means every non-key column from EXCLUDED. Rows
// must have distinct keys (fold a batch per key first). cols are "name
// type" pairs, e.g. "order_id uuid"; set "-" means DO NOTHING.
func (b *Batch) Upsert(ctx context.Context, tx pgx.Tx, table string, cols []string, key []string, set string, columns ...any) error {
	if len(columns) != len(cols) {
		return fmt.Errorf("upsert %s: %d columns, %d value slices", table, len(cols), len(columns))
	}
	names := make([]string, len(cols))
	params := make([]string, len(cols))
	isKey := map[string]bool{}
	for _, k := range key {
		isKey[k] = true
	}
	var sets []string
	for i, c := range cols {
		name, typ, ok := strings.Cut(c, " ")
		if !ok {
			return fmt.Errorf("upsert %s: column %q: want \"name type\"", table, c)
		}
		names[i] = pgx.Identifier{name}.Sanitize()
		params[i] = fmt.Sprintf("$%d::%s[]", i+1, typ)
		if !isKey[name] {
			sets = append(sets, names[i]+" = EXCLUDED."+names[i])
		}
	}
	if set == "" {
		set = strings.Join(sets, ", ")
	}
	keys := make([]string, len(key))
	for i, k := range key {
		keys[i] = pgx.Identifier{k}.Sanitize()
	}
	conflict := "DO NOTHING"
	if set != "-" {
		conflict = "DO UPDATE SET " + set
	}
	sql := fmt.Sprintf(`INSERT INTO %s AS t (%s) SELECT * FROM unnest(%s) ON CONFLICT (%s) %s`,
		b.Table(table), strings.Join(names, ", "), strings.Join(params, ", "), strings.Join(keys, ", "), conflict)
	if _, err := tx.Exec(ctx, sql, columns...); err != nil {
		return fmt.Errorf("upsert into %s: %w", table, err)
	}
	return nil
}

// Try runs fn under a savepoint: when fn fails, its writes and the
// rejects it recorded are undone and its error returned, and the batch's
// transaction stays usable. Projections use it for optimistic fast paths
// (COPY rows presumed new; on a unique violation, take the careful path).
func (b *Batch) Try(ctx context.Context, tx pgx.Tx, fn func() error) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT projector_try"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	n := len(b.rejects)
	if err := fn(); err != nil {
		if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT projector_try"); rerr != nil {
			return fmt.Errorf("%w (and rollback to savepoint: %w)", err, rerr)
		}
		b.rejects = b.rejects[:n]
		return err
	}
	_, err := tx.Exec(ctx, "RELEASE SAVEPOINT projector_try")
	return err
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
