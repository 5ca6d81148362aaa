package readapi

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/internal/httpx"
)

// limitParam reads ?limit= (default def, 1..max).
func limitParam(r *request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errBadRequest("limit", "must be an integer from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}

// textParam reads a required or optional bounded text parameter.
func textParam(r *request, name string, required bool, maxLen int) (string, error) {
	return checkText(name, r.URL.Query().Get(name), required, maxLen)
}

// pathText reads a {name} path value as bounded text (an id or a SKU).
func pathText(r *request, name string, maxLen int) (string, error) {
	return checkText(name, r.PathValue(name), true, maxLen)
}

// checkText refuses what no stored value can be: empty when required,
// invalid UTF-8, too long, or holding control characters (NUL included,
// which PostgreSQL refuses in text).
func checkText(name, s string, required bool, maxLen int) (string, error) {
	switch {
	case s == "" && required:
		return "", errBadRequest(name, "is required")
	case !utf8.ValidString(s) || len(s) > maxLen:
		return "", errBadRequest(name, "must be valid UTF-8 of at most "+strconv.Itoa(maxLen)+" bytes")
	case httpx.HasControl(s):
		return "", errBadRequest(name, "must not contain control characters")
	}
	return s, nil
}

// timeParam reads an optional RFC 3339 time.
func timeParam(r *request, name string) (*time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, errBadRequest(name, "must be an RFC 3339 time, e.g. 2026-03-01T09:00:00Z")
	}
	return &t, nil
}

// dateParam reads an optional YYYY-MM-DD date.
func dateParam(r *request, name string) (*time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, errBadRequest(name, "must be a date YYYY-MM-DD")
	}
	return &t, nil
}

// orderIDParam reads the {id} path value as an order id: a UUID in its
// canonical form only.
func orderIDParam(r *request) (uuid.UUID, error) {
	id, err := httpx.ParseUUID(r.PathValue("id"))
	if err != nil {
		return uuid.UUID{}, errBadRequest("id", "must be an order id (a UUID, 8-4-4-4-12 hex digits)")
	}
	return id, nil
}

// cursor is the position after the last row of a page of orders, newest
// first: (placed_at, order_id). Clients get it base64url-encoded and must
// treat it as opaque.
type cursor struct {
	PlacedAt time.Time `json:"t"`
	OrderID  uuid.UUID `json:"id"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := errBadRequest("cursor", "malformed; pass back the next_cursor of a previous page")
	if len(s) > 200 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.PlacedAt.IsZero() || c.OrderID == uuid.Nil {
		return nil, bad
	}
	return &c, nil
}
