package breaker

import "github.com/sony/gobreaker/v2"

// State is the state of a [Breaker] as its users and its metrics see it.
type State int8

// The states. Closed, half-open and open are gobreaker's; forced-open and
// disabled are modes an operator sets with [Breaker.ForceOpen] and
// [Breaker.Disable] and leaves with [Breaker.Reset].
const (
	// StateClosed admits every call and counts outcomes.
	StateClosed State = iota
	// StateHalfOpen admits a few probes and refuses the rest with
	// [ErrTooManyProbes]; the probes' outcomes close or reopen it.
	StateHalfOpen
	// StateOpen refuses every call with [ErrOpen] until its break duration
	// ends.
	StateOpen
	// StateForcedOpen refuses every call with [ErrOpen], without a retry
	// hint, until [Breaker.Reset].
	StateForcedOpen
	// StateDisabled admits every call and records metrics but never trips
	// (resilience4j's METRICS_ONLY), until [Breaker.Reset].
	StateDisabled
	// StatePaused refuses every call with [ErrPaused], without counting,
	// until the time a downstream advised ([WithPauseOnHint]); then the
	// breaker goes back to the state beneath.
	StatePaused

	numStates = 6
)

var stateNames = [numStates]string{"closed", "half_open", "open", "forced_open", "disabled", "paused"}

// String returns the state's name as the bulwark.from_state and
// bulwark.to_state attributes carry it: closed, half_open, open,
// forced_open, disabled, paused.
func (s State) String() string {
	if s < 0 || int(s) >= numStates {
		return "unknown"
	}
	return stateNames[s]
}

// label is the state's name on the admin page (Snapshot and Event):
// closed, half-open, open, forced-open, disabled.
func (s State) label() string {
	switch s {
	case StateHalfOpen:
		return "half-open"
	case StateForcedOpen:
		return "forced-open"
	}
	return s.String()
}

// gauge is the value of bulwark.breaker.state: 0 closed, 1 half-open,
// 2 open, 3 paused. Forced-open reports 2 (it refuses like open) and
// disabled reports 0 (it admits like closed).
func (s State) gauge() int64 {
	switch s {
	case StateHalfOpen:
		return 1
	case StateOpen, StateForcedOpen:
		return 2
	case StatePaused:
		return 3
	default:
		return 0
	}
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	default:
		return StateClosed
	}
}

// Counts are the outcomes a breaker counted in its current window (closed)
// or since it became half-open. They are cleared on every change of state.
type Counts struct {
	// Requests is the number of admitted calls, those still running
	// included.
	Requests uint32
	// Successes and Failures are the calls counted as such; Excluded are
	// the calls that ended but were not counted (the caller's
	// cancellation, a refusal by an inner policy).
	Successes, Failures, Excluded uint32
	// ConsecutiveSuccesses and ConsecutiveFailures are the current runs.
	ConsecutiveSuccesses, ConsecutiveFailures uint32
	// Slow is the number of slow calls in the window, successes and
	// failures alike; kept only with [WithSlowCallRatio] (else 0).
	Slow uint32
}

func countsFrom(c gobreaker.Counts) Counts {
	return Counts{
		Requests:             c.Requests,
		Successes:            c.TotalSuccesses,
		Failures:             c.TotalFailures,
		Excluded:             c.TotalExclusions,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
}
