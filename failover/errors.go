package failover

import (
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark"
)

// ErrNoEndpoint is the refusal of a Set whose every endpoint's breaker
// refused the call. The error a Set returns wraps it (errors.Is(err,
// ErrNoEndpoint) and errors.Is(err, bulwark.ErrUnavailable) both hold) and
// carries the earliest retry hint among the breakers.
var ErrNoEndpoint = fmt.Errorf("failover: no endpoint available: %w", bulwark.ErrUnavailable)

// NoEndpointError is the error a Set refuses a call with.
type NoEndpointError struct {
	// Set is the Set's name.
	Set   string
	after time.Duration
}

func (s *Set) noEndpoint(hint time.Duration, ok bool) error {
	if !ok {
		hint = 0
	}
	return &NoEndpointError{Set: s.name, after: hint}
}

// Error names the Set.
func (e *NoEndpointError) Error() string {
	return fmt.Sprintf("failover: %q: no endpoint available", e.Set)
}

// Unwrap returns [ErrNoEndpoint].
func (e *NoEndpointError) Unwrap() error { return ErrNoEndpoint }

// RetryAfter is the earliest time until one of the breakers lets a call
// through, as they said when the call was refused; 0 (no hint) when none
// knew.
func (e *NoEndpointError) RetryAfter() time.Duration { return e.after }
