package projections

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// All returns every read model, by name.
func All() []projector.Projection {
	all := []projector.Projection{
		Orders{}, OrderTimeline{}, Inventory{}, CustomersHistory{},
		Categories{}, ProductSearch{}, Sales{},
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name() < all[j].Name() })
	return all
}

// ByName finds a read model.
func ByName(name string) (projector.Projection, error) {
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w %q", projector.ErrUnknownProjection, name)
}

// filters returns the subject filters of event types.
func filters(types ...string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = events.MustLookup(t).SubjectFilter()
	}
	return out
}

// decode unmarshals an event's data; errors name the event.
func decode(ev *projector.Event, v any) error {
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("decode %s data of event %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// orderID parses an order id (a UUID) into the form pgx writes.
func orderID(s string) ([16]byte, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return [16]byte{}, fmt.Errorf("order id %q: %w", s, err)
	}
	return u, nil
}

// parseTime reads an RFC 3339 timestamp; fallback when empty.
func parseTime(s string, fallback time.Time) (time.Time, error) {
	if s == "" {
		return fallback, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t.UTC(), nil
}
