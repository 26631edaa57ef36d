package bulkhead

import "github.com/bulwark-go/bulwark"

// Snapshot shows the compartment on the admin page ([bulwark.Snapshotter]):
// kind "bulkhead", state "ok" or "full" (every slot taken; health "warn"),
// and the figures limit, in-flight, queued, refused (all refusals so far)
// and refused by reason (full, timeout, evicted). It scans the slots, so it
// costs O(limit).
func (b *Bulkhead) Snapshot() bulwark.Snapshot {
	inFlight := b.InFlight()
	var byReason [numReasons]int64
	var refused int64
	for r := range numReasons {
		for t := range bulwark.NumPriorities {
			n := b.m.refused.Load(r*bulwark.NumPriorities + t)
			byReason[r] += n
			refused += n
		}
	}
	s := bulwark.Snapshot{
		Name:  b.name,
		Kind:  "bulkhead",
		State: "ok",
		Figures: []bulwark.Figure{
			{Name: "limit", Value: float64(b.limit), Unit: "{call}"},
			{Name: "in-flight", Value: float64(inFlight), Unit: "{call}"},
			{Name: "queued", Value: float64(b.Queued()), Unit: "{call}"},
			{Name: "refused", Value: float64(refused), Unit: "{call}"},
			{Name: "refused full", Value: float64(byReason[reasonFull]), Unit: "{call}"},
			{Name: "refused timeout", Value: float64(byReason[reasonTimeout]), Unit: "{call}"},
			{Name: "refused evicted", Value: float64(byReason[reasonEvicted]), Unit: "{call}"},
		},
	}
	if inFlight >= b.limit {
		s.State, s.Health = "full", "warn"
	}
	return s
}

var _ bulwark.Snapshotter = (*Bulkhead)(nil)
