package bulwark

import (
	"errors"
	"strconv"
)

// Priority is the criticality tier of a request, after the SRE practice:
// [CriticalPlus] > [Critical] > [SheddablePlus] > [Sheddable]. The zero
// value is [Critical], the default. A higher tier compares greater, so
// p > q means p is the more important.
//
// Under pressure a policy never refuses a tier while it still admits a lower
// one (within one compartment or key).
type Priority int8

// The tiers, from the least important.
const (
	Sheddable     Priority = -2 // work that may be dropped first (prefetch, speculative)
	SheddablePlus Priority = -1 // batch and background work
	Critical      Priority = 0  // the default: user-facing work
	CriticalPlus  Priority = 1  // the work that must be served above all
)

// NumPriorities is the number of tiers; [Priority.Index] maps a tier into
// [0, NumPriorities).
const NumPriorities = 4

// Priorities lists the tiers from the most important to the least. It is a
// copy for callers to range over; bulwark itself never reads it, so
// changing it changes nothing here.
var Priorities = tiers

var tiers = [NumPriorities]Priority{CriticalPlus, Critical, SheddablePlus, Sheddable}

// Index maps the tier to 0 (Sheddable) … 3 (CriticalPlus), for arrays indexed
// by tier. A value outside the four tiers maps to Critical's index.
func (p Priority) Index() int {
	if !p.Valid() {
		return int(Critical - Sheddable)
	}
	return int(p - Sheddable)
}

// Valid reports whether p is one of the four tiers.
func (p Priority) Valid() bool { return p >= Sheddable && p <= CriticalPlus }

// String returns the wire form used by the Bulwark-Priority header and the
// bulwark-priority gRPC metadata: "critical-plus", "critical",
// "sheddable-plus" or "sheddable".
func (p Priority) String() string {
	switch p {
	case CriticalPlus:
		return "critical-plus"
	case Critical:
		return "critical"
	case SheddablePlus:
		return "sheddable-plus"
	case Sheddable:
		return "sheddable"
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

// ErrInvalidPriority is returned by [ParsePriority] for an unknown tier.
var ErrInvalidPriority = errors.New("bulwark: invalid priority")

// ParsePriority parses the wire form of a tier. Case does not matter, and
// "_" may stand for "-" ("CRITICAL_PLUS" is CriticalPlus). Anything else,
// the empty string included, is an error wrapping [ErrInvalidPriority].
// It allocates only on error.
func ParsePriority(s string) (Priority, error) {
	for _, p := range tiers {
		if wireEqual(s, p.String()) {
			return p, nil
		}
	}
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return Critical, &priorityError{s}
}

type priorityError struct{ s string }

func (e *priorityError) Error() string {
	return "bulwark: invalid priority " + strconv.Quote(e.s)
}

func (e *priorityError) Unwrap() error { return ErrInvalidPriority }

// wireEqual compares s with a lower-case, dash-separated wire name, ignoring
// case and accepting '_' for '-'.
func wireEqual(s, wire string) bool {
	if len(s) != len(wire) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != wire[i] {
			return false
		}
	}
	return true
}
