package runner

import (
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error kinds a handler (or the runner itself) can give a failure. An
// unclassified error is transient: retried with backoff up to MaxDeliver.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks an error that no retry can fix (a business rule broken
// by the message itself): the message is dead-lettered at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Invalid marks a message that failed decoding or schema validation: it is
// dead-lettered at once with the precise reason.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{&invalidError{err}}
}

type invalidError struct{ err error }

func (e *invalidError) Error() string { return "invalid message: " + e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

// IsPermanent reports whether err was marked Permanent or Invalid, or is
// a PostgreSQL data exception (SQLSTATE class 22: a NUL in text, a value
// out of range, an invalid text representation…): the message's own
// data cannot be stored, and no retry changes that.
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter asks for a delayed redelivery that is not a failure of the
// message (a dependency is known to be down, e.g. an open circuit breaker).
// JetStream still counts the delivery, so consumers that use it need a
// MaxDeliver sized for the longest outage they ride out.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: after}
}
