package httpx

import (
	"errors"
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// ErrNotCanonicalUUID is returned by ParseUUID for anything but the
// canonical 8-4-4-4-12 form.
var ErrNotCanonicalUUID = errors.New("not a UUID in canonical form (8-4-4-4-12 hex digits)")

// ParseUUID accepts only the canonical text of a UUID: 36 characters, hex
// digits in groups of 8-4-4-4-12 separated by hyphens, either case. The
// other forms uuid.Parse takes (urn:uuid:…, {…}, 32 bare digits) are
// refused, so the gateway, the JSON Schemas' "uuid" format and
// PostgreSQL's uuid type agree on what an id is.
func ParseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.UUID{}, ErrNotCanonicalUUID
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, ErrNotCanonicalUUID
	}
	return u, nil
}

// HasControl reports whether s holds a control character: C0 (NUL
// included), DEL or C1. Identifiers and search text carrying one are
// refused at the edge (PostgreSQL rejects NUL in text, so it would
// otherwise surface as a server error).
func HasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
