package drill

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bulwark-go/bulwark"
)

// The ready-made errors a [Spec] may inject, and the refusal.
var (
	// ErrRemoteUnavailable looks like a downstream's 503 / gRPC
	// UNAVAILABLE: it wraps [bulwark.ErrRemoteUnavailable], so retry
	// retries it, breakers count it, and the server adapters answer 503 /
	// UNAVAILABLE.
	ErrRemoteUnavailable = fmt.Errorf("drill: injected downstream unavailable: %w", bulwark.ErrRemoteUnavailable)
	// ErrTimeout looks like our own deadline firing: it wraps
	// [bulwark.ErrTimeout] (and so context.DeadlineExceeded).
	ErrTimeout = fmt.Errorf("drill: injected timeout: %w", bulwark.ErrTimeout)
	// ErrRefused is the injected refusal: this side cannot serve now. It
	// wraps [bulwark.ErrUnavailable] (503 / UNAVAILABLE).
	ErrRefused = fmt.Errorf("drill: injected refusal: %w", bulwark.ErrUnavailable)
	// ErrInvalidSpec is wrapped by the error of an [Drill.Arm] that was
	// given a spec or an expiry that means nothing.
	ErrInvalidSpec = errors.New("drill: invalid spec")
)

// The fault kinds: the bulwark.fault values of bulwark.drill.injected, and
// [InjectedError.Fault].
const (
	FaultLatency = "latency"
	FaultError   = "error"
	FaultRefusal = "refusal"
)

// InjectedError is what a Drill returns when it injected an error or a
// refusal: Err is the error of the [Spec] (or [ErrRefused]); errors.Is and
// errors.As see through to it. The values are made when the drill is armed
// and shared by the calls it hits; treat them as read-only.
type InjectedError struct {
	// Drill is the name of the drill that injected the error.
	Drill string
	// Fault is [FaultError] or [FaultRefusal].
	Fault string
	// Err is the injected error.
	Err error

	msg string
}

func newInjected(drill, fault string, err error) *InjectedError {
	msg := "drill " + drill + ": injected " + fault + ": " + err.Error()
	if err == ErrRefused || err == ErrRemoteUnavailable || err == ErrTimeout {
		// Their text already says what was injected.
		msg = "drill " + drill + ": " + strings.TrimPrefix(err.Error(), "drill: ")
	}
	return &InjectedError{Drill: drill, Fault: fault, Err: err, msg: msg}
}

// Error names the drill and the fault, then the injected error.
func (e *InjectedError) Error() string {
	if e.msg == "" {
		return "drill " + e.Drill + ": injected " + e.Fault + ": " + fmt.Sprint(e.Err)
	}
	return e.msg
}

// Unwrap returns the injected error.
func (e *InjectedError) Unwrap() error { return e.Err }

// IsInjected reports whether err is, or wraps, an error a Drill injected
// ([*InjectedError]). It allocates nothing. A caller's own deadline that
// fired during injected latency is the caller's error, not an injected one.
func IsInjected(err error) bool {
	for err != nil {
		if _, ok := err.(*InjectedError); ok {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if IsInjected(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
