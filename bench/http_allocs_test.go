package bench

import "testing"

// TestHTTPAddedAllocs counts what the HTTP scenarios allocate per request
// beyond the bare handler (testing.AllocsPerRun, not timed): the
// middleware over the bulwark stack adds at most one allocation on the
// plain path (gobreaker's two-step Allow closure), and at most two with a
// Bulwark-Priority header (that one and the request with its new context).
func TestHTTPAddedAllocs(t *testing.T) {
	g := findGroup(t, "HTTP")
	allocs := map[string]float64{}
	for _, s := range g.scenarios {
		op := s.setup(t)()
		allocs[s.name] = testing.AllocsPerRun(200, func() {
			if err := op(); err != nil {
				t.Fatal(err)
			}
		})
	}
	bare := allocs["bare"]
	for _, tt := range []struct {
		name string
		max  float64
	}{
		{"bulwarkhttp.Middleware", 1},
		{"bulwarkhttp.Middleware/priority-header", 2},
	} {
		added := allocs[tt.name] - bare
		t.Logf("%s: %v allocs/op, %v added", tt.name, allocs[tt.name], added)
		if added > tt.max && !raceEnabled {
			t.Errorf("%s adds %v allocations per request, want at most %v", tt.name, added, tt.max)
		}
	}
	t.Logf("failsafehttp.NewHandler: %v allocs/op, %v added", allocs["failsafehttp.NewHandler"], allocs["failsafehttp.NewHandler"]-bare)
}
