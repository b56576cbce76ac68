// Package failure holds the kinds of error the request path can end in. Every step returns
// these values; the ingress maps a Kind to its HTTP answer in one place.
package failure

import (
	"errors"
	"fmt"
)

// Kind says how a request failed, and so how it is answered.
type Kind int

const (
	Internal        Kind = iota // 500: a bug or an unexpected state
	Unauthorized                // 401: missing or wrong signature, stale timestamp
	UnknownSource               // 404
	WrongMethod                 // 405
	TooLarge                    // 413
	NotJSON                     // 415
	Unnormalizable              // 202: authentic, but goes to the quarantine topic
	Unavailable                 // 503: Kafka did not acknowledge in time
	Malformed                   // 400: not a well-formed HTTP request
	Timeout                     // 408: the request did not arrive within the read timeout
	HeadersTooLarge             // 431: the header block does not fit the header buffer
)

// Error is a request failure with its kind. Reason is safe to show to the caller: it never
// holds a secret or a signature. Err, if set, is the cause, for logs.
type Error struct {
	Kind   Kind
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error of kind k with a printf-style reason.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind k with reason and cause.
func Wrap(k Kind, reason string, cause error) *Error {
	return &Error{Kind: k, Reason: reason, Err: cause}
}

// KindOf returns the Kind of err, or Internal if err carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
