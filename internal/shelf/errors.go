package shelf

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. Adapters map them to their own vocabulary
// (HTTP statuses, dead-letter reasons) in one place each.
var (
	// ErrInvalid: a command or an event breaks a rule of the domain.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: the book is unknown.
	ErrNotFound = errors.New("book not found")
	// ErrRemoved: the book existed and was removed.
	ErrRemoved = errors.New("book was removed")
	// ErrConflict: the command contradicts what happened before, such as an
	// idempotency key reused with another request.
	ErrConflict = errors.New("conflict")
	// ErrRefused: the event log refused for good what the command would
	// write, such as an event larger than the log takes. Trying again
	// gets the same answer.
	ErrRefused = errors.New("refused by the event log")
	// ErrUndecidable: a command that names itself (an id) but that this
	// version of the aggregate cannot decide: of a type it does not know
	// (a newer instance sent it during a rolling upgrade), with a field
	// outside its rules, or placed where the aggregate does not hold its
	// book. It is answered with the reason and dead-lettered; sending it
	// again to the same version gets the same answer.
	ErrUndecidable = errors.New("cannot be decided")
	// ErrUnavailable: the event log cannot take the command, or its
	// outcome did not come in time, now. The caller may retry (with the
	// same idempotency key); the command may still take effect.
	ErrUnavailable = errors.New("the event log is unavailable")
	// ErrUnknownType: a well-formed event of a type this version does not
	// know. Readers skip it rather than dead-letter it: a newer writer may
	// have produced it.
	ErrUnknownType = errors.New("unknown event type")
	// ErrMalformed: a record that cannot be read as an event at all.
	ErrMalformed = errors.New("malformed record")
)

// FieldError says which field of a command or event is wrong and why.
// It matches ErrInvalid with errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

// Error says which field is wrong and why, as "field: reason".
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func isErr(err, target error) bool { return errors.Is(err, target) }

func asFieldError(err error, fe **FieldError) bool { return errors.As(err, fe) }
