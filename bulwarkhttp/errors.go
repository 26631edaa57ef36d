package bulwarkhttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

// handlerError is what the middleware reports to the policies for a
// response status the classifier calls a failure: an unclassified failure
// (breakers count it, retry does not retry it).
type handlerError struct {
	status int
	msg    string
}

func (e *handlerError) Error() string { return e.msg }

// StatusCode returns the status the handler wrote.
func (e *handlerError) StatusCode() int { return e.status }

// handlerErrors are preallocated for the common 5xx statuses.
var handlerErrors = func() (errs [12]*handlerError) {
	for i := range errs {
		errs[i] = newHandlerError(500 + i)
	}
	return errs
}()

func newHandlerError(status int) *handlerError {
	return &handlerError{status: status, msg: "bulwarkhttp: handler responded " + strconv.Itoa(status)}
}

func statusFailure(status int) error {
	if i := status - 500; i >= 0 && i < len(handlerErrors) {
		return handlerErrors[i]
	}
	return newHandlerError(status)
}

// StatusError is a downstream's answer that [Transport] classified as a
// failure; its policies see it. It wraps the class of the status:
//
//	429                     bulwark.ErrRemoteRejected (breakers do not count it)
//	502, 503, 504           bulwark.ErrRemoteUnavailable (retried by default)
//	other 5xx               no class: an unclassified failure (breakers count it,
//	                        retry does not retry it by default)
//
// RetryAfter returns the server's Retry-After (delta-seconds or HTTP-date),
// which retry honours. Retryable reports only whether the request may be
// sent again (see [Transport]): the choice of what to retry among
// replayable answers stays with the retry policy (by default 502/503/504,
// and 429 with a hint). Use errors.As to reach it:
//
//	var se *bulwarkhttp.StatusError
//	if errors.As(err, &se) && se.StatusCode == http.StatusServiceUnavailable { ... }
//
// When the policies give up on such an answer, RoundTrip returns the
// response itself, not this error; the error is what the policies (retry,
// breakers) see, and what a test of them can build with [NewStatusError].
type StatusError struct {
	// StatusCode is the downstream's status.
	StatusCode int
	// Response is the downstream's response. Its body belongs to the
	// Transport: it is closed when the call is retried, or handed to the
	// caller when the policies give up.
	Response *http.Response
	// Attempt is the 1-based attempt that got this answer.
	Attempt int

	retryAfter time.Duration
	replayable bool
}

// NewStatusError returns the error [Transport] reports for resp: a
// [*StatusError], or nil (an untyped nil error) for a status that is no
// failure (below 500 and not 429). The request is taken as replayable; now
// is the time HTTP-date Retry-After values are measured from.
func NewStatusError(resp *http.Response, now time.Time) error {
	return newStatusError(resp, 1, true, now)
}

// newStatusError returns an error, never a typed nil: comparing its
// result with nil must say what it means.
func newStatusError(resp *http.Response, attempt int, replayable bool, now time.Time) error {
	if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	e := &StatusError{StatusCode: resp.StatusCode, Response: resp, Attempt: attempt, replayable: replayable}
	if v := resp.Header.Get(headerRetryAfter); v != "" {
		e.retryAfter, _ = parseRetryAfter(v, now)
	}
	return e
}

func (e *StatusError) Error() string {
	s := "bulwarkhttp: downstream answered " + strconv.Itoa(e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		s += " " + t
	}
	if e.retryAfter > 0 {
		s += " (retry after " + e.retryAfter.String() + ")"
	}
	return s
}

// Unwrap returns the class of the status: [bulwark.ErrRemoteRejected],
// [bulwark.ErrRemoteUnavailable], or nil for an unclassified failure.
func (e *StatusError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusTooManyRequests:
		return bulwark.ErrRemoteRejected
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return bulwark.ErrRemoteUnavailable
	}
	return nil
}

// RetryAfter returns the server's Retry-After; 0 when it sent none (or one
// in the past, or unparseable).
func (e *StatusError) RetryAfter() time.Duration { return e.retryAfter }

// Retryable reports whether the request may be sent again: false when it
// cannot be replayed (a method that is not idempotent without an
// Idempotency-Key, or a body that cannot be rewound). Whether this answer
// is worth retrying is the retry policy's choice, so that a user's retry
// predicate can opt in to, say, 500s.
func (e *StatusError) Retryable() bool { return e.replayable }

// TransportError is a downstream that could not be reached or did not
// answer (a failed dial, a reset connection): it wraps
// [bulwark.ErrRemoteUnavailable] and the underlying error (errors.Is holds
// for both). An attempt ended by a context (the caller's, or a per-attempt
// deadline) is not a TransportError: it is that context's error.
type TransportError struct {
	// Err is the underlying transport's error.
	Err error
	// Attempt is the 1-based attempt that failed.
	Attempt int

	replayable bool
}

func (e *TransportError) Error() string {
	return "bulwarkhttp: downstream unreachable: " + e.Err.Error()
}

// Unwrap returns [bulwark.ErrRemoteUnavailable] and Err.
func (e *TransportError) Unwrap() []error {
	return []error{bulwark.ErrRemoteUnavailable, e.Err}
}

// Retryable reports whether the request may be sent again: false when it
// cannot be replayed (it may have reached the server).
func (e *TransportError) Retryable() bool { return e.replayable }

// notReplayableError is what a second call of the transport's fn gets for a
// request that must not be sent twice, when the first attempt left no
// error to repeat (a hedge started while it ran), or when GetBody failed.
type notReplayableError struct{ err error }

func (e *notReplayableError) Error() string {
	if e.err != nil {
		return "bulwarkhttp: request cannot be replayed: " + e.err.Error()
	}
	return "bulwarkhttp: request cannot be replayed"
}

func (e *notReplayableError) Unwrap() error   { return e.err }
func (e *notReplayableError) Retryable() bool { return false }

// parseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3):
// delay-seconds or an HTTP-date, measured from now. ok is false for a value
// that is neither; a date in the past gives 0.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if c := v[0]; c >= '0' && c <= '9' {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
				return maxRetryAfter, true
			}
			return 0, false
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, maxRetryAfter), true
}

// maxRetryAfter caps a server's hint: a year is "not now".
const maxRetryAfter = 365 * 24 * time.Hour
