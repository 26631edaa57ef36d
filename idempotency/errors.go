package idempotency

import (
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The refusals of a [Guard]. The faces map them to the wire (see the
// package documentation for the table); none of them ran the handler.
var (
	// ErrInvalidKey is an Idempotency-Key that is empty, malformed, longer
	// than [MaxKeyLength] characters, sent in several fields or as a list.
	// HTTP 400, gRPC INVALID_ARGUMENT.
	ErrInvalidKey = errors.New("idempotency: invalid key")

	// ErrKeyRequired is a request without a key to a Guard built with
	// [WithKeyRequired]. HTTP 400, gRPC INVALID_ARGUMENT.
	ErrKeyRequired = errors.New("idempotency: key required")

	// ErrMismatch is a key reused with another request (another
	// fingerprint), whether the first is still in flight or completed.
	// HTTP 422, gRPC FAILED_PRECONDITION.
	ErrMismatch = errors.New("idempotency: key reused with a different request")

	// ErrInFlight is a duplicate of a request still being processed. The
	// error returned carries a retry hint (bulwark.RetryAfter). HTTP 409
	// with Retry-After, gRPC ABORTED with RetryInfo.
	ErrInFlight = errors.New("idempotency: a request with this key is in flight")

	// ErrRequestTooLarge is a request body larger than [WithMaxRequestBytes]:
	// it cannot be fingerprinted. HTTP 413, gRPC INVALID_ARGUMENT.
	ErrRequestTooLarge = errors.New("idempotency: request too large to fingerprint")

	// ErrNotReplayable is a duplicate of a request that completed with a
	// response larger than [WithMaxResponseBytes]: the work is done, the
	// response was sent to the first caller in full, and it cannot be
	// replayed. HTTP 409 without Retry-After and with Idempotent-Replayed:
	// true, gRPC ALREADY_EXISTS.
	ErrNotReplayable = errors.New("idempotency: request already processed; its response was too large to store")

	// ErrStoreUnavailable is a store that failed or did not answer within
	// [WithStoreTimeout]: exactly-once cannot be promised, so the request
	// is refused (unless [WithFailOpen]). It wraps [bulwark.ErrUnavailable]
	// and the error returned carries a one-second retry hint. HTTP 503 with
	// Retry-After, gRPC UNAVAILABLE.
	ErrStoreUnavailable = fmt.Errorf("idempotency: store unavailable: %w", bulwark.ErrUnavailable)
)

// Errors a [Store] returns.
var (
	// ErrNotOwner is returned by [Store.Complete] and [Store.Release] when
	// the token no longer owns the claim: it expired, was taken over by a
	// duplicate, or was completed already. The late completion is
	// discarded.
	ErrNotOwner = errors.New("idempotency: claim not owned")

	// ErrStoreFull is returned by a bounded store that cannot make room
	// without evicting an in-flight claim. It wraps [ErrStoreUnavailable].
	ErrStoreFull = fmt.Errorf("idempotency: store full: %w", ErrStoreUnavailable)
)

// storeRetry is the hint sent with a store failure.
const storeRetry = time.Second

// hintError wraps err with a retry hint.
type hintError struct {
	err  error
	hint time.Duration
}

func (e *hintError) Error() string             { return e.err.Error() }
func (e *hintError) Unwrap() error             { return e.err }
func (e *hintError) RetryAfter() time.Duration { return e.hint }

// storeError is what a request sees when the store failed: it wraps
// [ErrStoreUnavailable] (so bulwark.ErrUnavailable) and the store's own
// error, and carries a one-second hint.
type storeError struct {
	err error
}

func (e *storeError) Error() string {
	return ErrStoreUnavailable.Error() + ": " + e.err.Error()
}
func (e *storeError) Unwrap() []error           { return []error{ErrStoreUnavailable, e.err} }
func (e *storeError) RetryAfter() time.Duration { return storeRetry }

func newStoreError(err error) error {
	if errors.Is(err, ErrStoreUnavailable) {
		return &hintError{err: err, hint: storeRetry}
	}
	return &storeError{err: err}
}

// inFlight is the preallocated ErrInFlight with its one-second hint.
var inFlight error = &hintError{err: ErrInFlight, hint: time.Second}
