package drill

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Spec says what an armed [Drill] injects, with what probability, into
// which calls. Each fault is on when its Probability is above 0; a spec
// must turn on at least one. Faults combine: a call may be delayed and
// then refused. The zero Spec injects nothing and is refused by Arm.
type Spec struct {
	// Latency delays matching calls before fn runs.
	Latency Latency
	// Error makes matching calls return an error instead of running fn.
	Error Error
	// Refusal makes matching calls refused with [ErrRefused] instead of
	// running fn. When a call draws both an error and a refusal, the
	// refusal wins.
	Refusal Refusal
	// Match scopes the drill to some calls; the zero Match selects every
	// call.
	Match Match
}

// Latency is added delay: fixed at Min when Max is 0 (or equal to Min),
// else drawn uniformly from [Min, Max].
type Latency struct {
	Min, Max time.Duration
	// Probability that a matching call is delayed, in [0, 1]; 0 turns
	// the fault off.
	Probability float64
}

// Error is an injected error.
type Error struct {
	// Err is returned, inside an [*InjectedError]: any error, or the
	// ready-made [ErrRemoteUnavailable] or [ErrTimeout]. It must not be
	// nil when Probability is above 0.
	Err error
	// Probability that a matching call fails, in [0, 1]; 0 turns the
	// fault off.
	Probability float64
}

// Refusal is an injected refusal ([ErrRefused]).
type Refusal struct {
	// Probability that a matching call is refused, in [0, 1]; 0 turns
	// the fault off.
	Probability float64
}

// Match selects the calls a drill hits; a call must pass every condition
// that is set.
type Match struct {
	// Tiers, when not empty, selects calls of these tiers
	// ([bulwark.PriorityFrom]).
	Tiers []bulwark.Priority
	// Keys, when not empty, selects calls with one of these partition
	// keys ([bulwark.KeyFrom]): tenants, users.
	Keys []string
	// Marked selects only calls carrying this drill's marker
	// ([bulwark.DrillFrom] equal to the drill's name), that is synthetic
	// traffic a test client sent with Bulwark-Drill: <name>.
	Marked bool
}

// validate returns an error wrapping ErrInvalidSpec naming the first field
// that means nothing.
func (s *Spec) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"Latency.Probability", s.Latency.Probability}, {"Error.Probability", s.Error.Probability}, {"Refusal.Probability", s.Refusal.Probability}} {
		if !(p.v >= 0 && p.v <= 1) {
			return bad("%s must be in [0, 1], got %v", p.name, p.v)
		}
	}
	if s.Latency.Probability == 0 && s.Error.Probability == 0 && s.Refusal.Probability == 0 {
		return bad("no fault has a probability above 0")
	}
	if l := s.Latency; l.Probability > 0 {
		switch {
		case l.Min < 0:
			return bad("Latency.Min must be >= 0, got %v", l.Min)
		case l.Max < 0:
			return bad("Latency.Max must be >= 0, got %v", l.Max)
		case l.Max != 0 && l.Max < l.Min:
			return bad("Latency.Max %v is below Latency.Min %v", l.Max, l.Min)
		case l.Min == 0 && l.Max == 0:
			return bad("Latency has a probability but no delay")
		}
	}
	if s.Error.Probability > 0 && s.Error.Err == nil {
		return bad("Error.Err is nil")
	}
	for _, p := range s.Match.Tiers {
		if !p.Valid() {
			return bad("Match.Tiers holds %d, not a tier", p)
		}
	}
	if slices.Contains(s.Match.Keys, "") {
		return bad("Match.Keys holds an empty key")
	}
	return nil
}

// String describes the spec in one line, for events and logs.
func (s Spec) String() string {
	var parts []string
	prob := func(p float64) string {
		if p >= 1 {
			return ""
		}
		return " p=" + strconv.FormatFloat(p, 'g', 4, 64)
	}
	if l := s.Latency; l.Probability > 0 {
		d := "latency " + l.Min.String()
		if l.Max > l.Min {
			d += "–" + l.Max.String()
		}
		parts = append(parts, d+prob(l.Probability))
	}
	if e := s.Error; e.Probability > 0 && e.Err != nil {
		parts = append(parts, "error "+strconv.Quote(e.Err.Error())+prob(e.Probability))
	}
	if r := s.Refusal; r.Probability > 0 {
		parts = append(parts, "refusal"+prob(r.Probability))
	}
	if len(s.Match.Tiers) > 0 {
		t := make([]string, len(s.Match.Tiers))
		for i, p := range s.Match.Tiers {
			t[i] = p.String()
		}
		parts = append(parts, "tiers "+strings.Join(t, ","))
	}
	if len(s.Match.Keys) > 0 {
		parts = append(parts, "keys "+strings.Join(s.Match.Keys, ","))
	}
	if s.Match.Marked {
		parts = append(parts, "marked calls only")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// clone returns s with its own copies of the slices, so the caller may
// reuse theirs.
func (s Spec) clone() Spec {
	s.Match.Tiers = slices.Clone(s.Match.Tiers)
	s.Match.Keys = slices.Clone(s.Match.Keys)
	return s
}

// delay draws a latency from l using u, a uniform draw in [0, 1).
func (l Latency) delay(u float64) time.Duration {
	if l.Max <= l.Min {
		return l.Min
	}
	d := float64(l.Min) + u*float64(l.Max-l.Min)
	if d >= float64(l.Max) || math.IsNaN(d) {
		return l.Max
	}
	return time.Duration(d)
}
