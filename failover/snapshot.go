package failover

import (
	"context"
	"fmt"

	"github.com/bulwark-go/bulwark"
)

// Snapshot implements [bulwark.Snapshotter] for the admin page: the active
// endpoint, whether it is pinned, each endpoint's breaker state, switch
// counts and recent switches.
func (s *Set) Snapshot() bulwark.Snapshot {
	st := s.Status()
	snap := bulwark.Snapshot{Name: s.name, Kind: "failover"}
	available := 0
	for _, e := range st.Endpoints {
		if !out(e.Breaker) {
			available++
		}
	}
	switch {
	case st.Pinned != "":
		snap.State = "pinned to " + endpointLabel(st.Pinned)
		snap.Health = "warn"
	case s.o.mode == RoundRobin:
		snap.State = "round-robin"
	default:
		snap.State = "on " + endpointLabel(st.Endpoint)
		if st.Active > 0 {
			snap.Health = "warn"
		}
	}
	if available == 0 {
		snap.Health = "fail"
	}
	snap.Figures = []bulwark.Figure{
		{Name: "active", Value: float64(st.Active)},
		{Name: "available", Value: float64(available)},
		{Name: "endpoints", Value: float64(len(st.Endpoints))},
	}
	for i, e := range st.Endpoints {
		snap.Figures = append(snap.Figures, bulwark.Figure{Name: fmt.Sprintf("%d %s open", i, endpointLabel(e.Endpoint)), Value: b2f(out(e.Breaker))})
	}
	for r, n := range reasonNames {
		snap.Figures = append(snap.Figures, bulwark.Figure{Name: "switches " + n, Value: float64(s.switches.Load(r))})
	}
	s.mu.Lock()
	snap.Changed, snap.Source, snap.Reason = s.change, s.source, s.reason
	s.mu.Unlock()
	snap.Events = s.events.Events()
	return snap
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Actions implements [bulwark.Controller]: pin (to one of the endpoints)
// and unpin.
func (s *Set) Actions() []bulwark.Action {
	return []bulwark.Action{
		{Name: "pin", Label: "Pin", Params: []bulwark.Param{{Name: "endpoint", Label: "Endpoint", Kind: bulwark.ParamChoice, Choices: s.Endpoints(), Required: true}}},
		{Name: "unpin", Label: "Unpin"},
	}
}

// Control implements [bulwark.Controller].
func (s *Set) Control(_ context.Context, action string, args map[string]string, reason string) error {
	switch action {
	case "pin":
		return s.pin(args["endpoint"], reason)
	case "unpin":
		s.unpin(reason)
		return nil
	}
	return fmt.Errorf("failover: %q: unknown action %q: %w", s.name, action, bulwark.ErrInvalidControl)
}

var _ bulwark.EndpointPicker = (*Set)(nil)
