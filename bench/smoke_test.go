package bench

import (
	"strings"
	"sync"
	"testing"
)

// TestSmoke runs every benchmark scenario a few times, on one goroutine
// and on two, so that CI proves they build and succeed without running
// the benchmarks for long.
func TestSmoke(t *testing.T) {
	for _, g := range groups {
		for _, s := range g.scenarios {
			t.Run(g.name+"/"+s.name, func(t *testing.T) {
				worker := s.setup(t)
				var wg sync.WaitGroup
				for range 2 {
					op := worker()
					wg.Go(func() {
						for range 3 {
							if err := op(); err != nil {
								t.Errorf("got %v, want nil", err)
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// TestGroupsHaveBulwark checks that every comparison has a bulwark side
// (the README's ratios are taken against it) and unique names.
func TestGroupsHaveBulwark(t *testing.T) {
	for _, g := range groups {
		seen, bulwarkSide := map[string]bool{}, false
		for _, s := range g.scenarios {
			if seen[s.name] {
				t.Errorf("%s: scenario %q twice", g.name, s.name)
			}
			seen[s.name] = true
			if strings.HasPrefix(s.name, "bulwark") {
				bulwarkSide = true
			}
		}
		if !bulwarkSide {
			t.Errorf("%s: got no bulwark scenario, want one", g.name)
		}
	}
}
