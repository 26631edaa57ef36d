package bulwark

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"
)

// Snapshotter is implemented by values that can show their live state on the
// admin page: breakers, compartments, limiters, retry budgets, switches,
// shedders, drills, failover sets — and any type of the user's. Snapshot
// must be cheap and safe for concurrent use; it is called on every refresh
// of the page.
type Snapshotter interface {
	Snapshot() Snapshot
}

// Snapshot is the state of one policy at one moment, in a shape common to
// every kind so that the admin page needs no knowledge of any of them.
// The JSON field names are stable.
type Snapshot struct {
	// Name is the policy's name; [Registry.Snapshots] and the admin page
	// set it to the name the value is registered under.
	Name string `json:"name"`
	// Kind is what the policy is: "breaker", "bulkhead", "ratelimit",
	// "retry-budget", "switch", "shedder", "drill", "failover", … .
	Kind string `json:"kind"`
	// State is the policy's state in a word or two: "closed", "open",
	// "half-open", "on", "off", "level 2", "armed", "ok".
	State string `json:"state"`
	// Health says how an operator should read State: "ok" (normal),
	// "warn" (degraded, probing, shedding) or "fail" (refusing). The page
	// colours rows by it. Empty is "ok".
	Health string `json:"health,omitempty"`
	// Figures are a few named numbers: counts, limit, in-flight, queue,
	// level, ratios. In the order the policy gives them.
	Figures []Figure `json:"figures,omitempty"`
	// Changed is when State last changed; zero when it never did.
	Changed time.Time `json:"changed,omitzero"`
	// Source is who made the last change: "manual", "automatic" or
	// "config" (SPEC's bulwark.source values); empty when unknown.
	Source string `json:"source,omitempty"`
	// Reason is the last change's reason, as its maker gave it.
	Reason string `json:"reason,omitempty"`
	// Events are the policy's recent changes, oldest first (bounded; see
	// [EventLog]).
	Events []Event `json:"events,omitempty"`
	// Actions are the controls the policy accepts ([Controller]); filled
	// in by [Registry.Snapshots] callers such as the admin page.
	Actions []Action `json:"actions,omitempty"`
}

// Figure is one named number of a [Snapshot].
type Figure struct {
	Name string `json:"name"`
	// Value is the number. JSON has no NaN or infinities: such a value
	// is encoded as null (and decodes back as 0), so that one odd
	// figure (a ratio of 0 / 0) does not make a whole snapshot
	// unencodable.
	Value float64 `json:"value"`
	// Unit is the value's unit in UCUM form as OpenTelemetry uses it
	// ("s", "1", "{request}"); empty for a plain count.
	Unit string `json:"unit,omitempty"`
}

// MarshalJSON encodes f, with a NaN or infinite Value as null.
func (f Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	if !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		return json.Marshal(plain(f))
	}
	return json.Marshal(struct {
		Name  string   `json:"name"`
		Value *float64 `json:"value"`
		Unit  string   `json:"unit,omitempty"`
	}{Name: f.Name, Unit: f.Unit})
}

// Event is one recorded change of a policy: a state transition, a switch
// flip, a level change, an arming.
type Event struct {
	Time time.Time `json:"time"`
	// From and To are the states before and after; From is empty for
	// changes that are not transitions.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Source is "manual", "automatic" or "config".
	Source string `json:"source,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DefaultEventLogSize is the number of events an [EventLog] keeps when its
// size is zero.
const DefaultEventLogSize = 50

// EventLog is a bounded ring of a policy's recent [Event]s, for its
// [Snapshot]. The zero value keeps the last [DefaultEventLogSize] events;
// it is safe for concurrent use.
type EventLog struct {
	// Size is the number of events kept; 0 (or less) means
	// DefaultEventLogSize. It may change between calls (not during one:
	// set it where nothing else calls the log): the log then keeps the
	// newest events that fit.
	Size int

	mu   sync.Mutex
	buf  []Event
	next int
	full bool
}

// fitLocked sizes the ring to Size, keeping the newest events.
func (l *EventLog) fitLocked() {
	size := l.Size
	if size <= 0 {
		size = DefaultEventLogSize
	}
	if len(l.buf) == size {
		return
	}
	if l.buf == nil {
		l.buf = make([]Event, size)
		return
	}
	old := l.orderedLocked()
	if len(old) > size {
		old = old[len(old)-size:]
	}
	l.buf = make([]Event, size)
	copy(l.buf, old)
	l.next, l.full = len(old)%size, len(old) == size
}

// orderedLocked returns the recorded events, oldest first.
func (l *EventLog) orderedLocked() []Event {
	if !l.full {
		out := make([]Event, l.next)
		copy(out, l.buf[:l.next])
		return out
	}
	out := make([]Event, 0, len(l.buf))
	out = append(out, l.buf[l.next:]...)
	return append(out, l.buf[:l.next]...)
}

// Add records e, dropping the oldest event when the log is full.
func (l *EventLog) Add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fitLocked()
	l.buf[l.next] = e
	l.next++
	if l.next == len(l.buf) {
		l.next, l.full = 0, true
	}
}

// Events returns a copy of the recorded events, oldest first.
func (l *EventLog) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf != nil {
		l.fitLocked()
	}
	return l.orderedLocked()
}

// Last returns the most recent event, if any.
func (l *EventLog) Last() (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf != nil {
		l.fitLocked()
	}
	if !l.full && l.next == 0 {
		return Event{}, false
	}
	i := l.next - 1
	if i < 0 {
		i = len(l.buf) - 1
	}
	return l.buf[i], true
}

// Controller is implemented by values an operator may steer from the admin
// page: a switch's on / off / release, a shedder's level, a breaker's force
// open / reset, a limiter's limit and burst, a drill's arming, a failover
// pin. The page renders one form per [Action] from its declaration, so a new
// kind of policy needs no change to the page.
type Controller interface {
	// Actions declares the actions the value accepts.
	Actions() []Action
	// Control performs action with args (parameter name → value as
	// typed by the operator) and records it as a manual change with
	// reason. An unknown action or a bad argument returns an error
	// wrapping [ErrInvalidControl].
	Control(ctx context.Context, action string, args map[string]string, reason string) error
}

// ErrInvalidControl is wrapped by a [Controller]'s error for an unknown
// action or a bad argument; the admin page answers it with 400.
var ErrInvalidControl = errors.New("bulwark: invalid control")

// Action is one control a [Controller] accepts.
type Action struct {
	// Name identifies the action in Control calls: "on", "off",
	// "release", "set-level", "force-open", "reset", "set-limit", "arm".
	Name string `json:"name"`
	// Label is a short human text for the button ("Force open").
	Label string `json:"label"`
	// Params are the action's parameters, in form order.
	Params []Param `json:"params,omitempty"`
}

// ParamKind is the type of an [Action] parameter, which decides the form
// field the admin page renders and how its value is parsed.
type ParamKind string

// The parameter kinds.
const (
	ParamString   ParamKind = "string"
	ParamInt      ParamKind = "int"
	ParamFloat    ParamKind = "float"
	ParamBool     ParamKind = "bool"
	ParamDuration ParamKind = "duration" // time.ParseDuration syntax
	ParamChoice   ParamKind = "choice"   // one of Choices
)

// Param declares one parameter of an [Action].
type Param struct {
	Name     string    `json:"name"`
	Label    string    `json:"label,omitempty"`
	Kind     ParamKind `json:"kind"`
	Choices  []string  `json:"choices,omitempty"`
	Required bool      `json:"required,omitempty"`
	// Default is the value the form starts with, as text.
	Default string `json:"default,omitempty"`
	// Help is a one-line hint shown next to the field.
	Help string `json:"help,omitempty"`
}
