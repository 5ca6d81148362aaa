// Package prefs holds users' notification preferences: the notification
// kinds (events.NotificationKinds) each user muted, one row per user in
// public.notification_preferences. The gateway reads and writes them for
// the signed-in user; the notifier reads them for a whole batch in its own
// statement (notifier.appendAll), in the runner's transaction.
//
// Invariant (kept by the notifier, not here): a notification of a kind
// its user muted is never made — no inbox row, no seq, no message — so it
// is neither pushed nor counted unread, and the user's seq stays gap-free.
// Muting takes effect for notifications the notifier commits after the
// preference commits; entries already in the inbox stay there.
package prefs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
)

// UnknownKindError is a muted kind the notifier does not make; Index is
// its place in the list given.
type UnknownKindError struct {
	Index int
	Kind  string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("muted_kinds[%d]: %q is not a notification kind (known: %v)", e.Index, e.Kind, events.NotificationKinds())
}

// Normalize checks every kind is known and returns them sorted and without
// repeats (an empty list, never nil). An unknown kind is an
// *UnknownKindError.
func Normalize(kinds []string) ([]string, error) {
	known := events.NotificationKinds()
	out := make([]string, 0, len(kinds))
	for i, k := range kinds {
		if !slices.Contains(known, k) {
			return nil, &UnknownKindError{Index: i, Kind: k}
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Store reads and writes preferences in PostgreSQL.
type Store struct{ Pool *pgxpool.Pool }

// Muted returns the kinds user muted (empty, not nil, for a user who never
// set any).
func (s Store) Muted(ctx context.Context, user string) ([]string, error) {
	var kinds []string
	err := s.Pool.QueryRow(ctx, `SELECT muted_kinds FROM public.notification_preferences WHERE user_id = $1`, user).Scan(&kinds)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return []string{}, nil
	case err != nil:
		return nil, fmt.Errorf("notification preferences of %s: %w", user, err)
	}
	if kinds == nil {
		kinds = []string{}
	}
	return kinds, nil
}

// SetMuted replaces the kinds user muted with kinds (normalised, see
// Normalize) and returns them as stored.
func (s Store) SetMuted(ctx context.Context, user string, kinds []string) ([]string, error) {
	kinds, err := Normalize(kinds)
	if err != nil {
		return nil, err
	}
	_, err = s.Pool.Exec(ctx, `
		INSERT INTO public.notification_preferences (user_id, muted_kinds, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (user_id) DO UPDATE SET muted_kinds = excluded.muted_kinds, updated_at = excluded.updated_at`, user, kinds)
	if err != nil {
		return nil, fmt.Errorf("set notification preferences of %s: %w", user, err)
	}
	return kinds, nil
}
