package scenario_test

import (
	"net/http"
	"testing"

	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// TestMetricsAgreeWithTheWire runs the server stack of scenario 1 under an
// SDK meter provider and checks that what the instruments counted is what
// the client saw: a limiter refusal carries the RateLimit headers, a
// bulkhead refusal does not.
func TestMetricsAgreeWithTheWire(t *testing.T) {
	r := metrictest.New(t)
	s := newServerStack(t, 10, 2, r.Provider)

	var seen []tiered
	finish := fillPool(t, s, 2)
	seen = append(seen, tiered{"critical", send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", "critical")})
	finish()
	seen = append(seen, alternating(t, s, 16)...)

	// The two slow requests were admitted critical calls.
	allowed := map[string]int64{"critical": 2}
	limited := map[string]int64{}
	var ok, refused, full int64 = 2, 0, 0
	for _, g := range seen {
		switch {
		case g.a.status == http.StatusOK:
			ok++
			allowed[g.tier]++
		case g.a.status == http.StatusServiceUnavailable && g.a.rateLimitPolicy != "":
			refused++
			limited[g.tier]++
		case g.a.status == http.StatusServiceUnavailable:
			refused++
			full++
			allowed[g.tier]++ // the limiter took a token before the bulkhead refused
		default:
			t.Fatalf("%s: status = %d, want 200 or 503", g.tier, g.a.status)
		}
	}
	if full != 1 || limited["sheddable"] == 0 || limited["critical"] == 0 {
		t.Fatalf("saw %d bulkhead refusals and limiter refusals %v, want 1 and both tiers limited", full, limited)
	}

	for _, tier := range []string{"sheddable", "critical"} {
		for _, tt := range []struct {
			decision string
			want     int64
		}{{"allowed", allowed[tier]}, {"limited", limited[tier]}} {
			got := r.Int64Total("bulwark.ratelimit.decisions",
				"bulwark.policy.name", "api", "bulwark.decision", tt.decision, "bulwark.priority", tier)
			if got != tt.want {
				t.Errorf("bulwark.ratelimit.decisions{%s, %s} = %d, want %d (on the wire); all: %v",
					tt.decision, tier, got, tt.want, r.Int64("bulwark.ratelimit.decisions"))
			}
		}
	}
	for _, tt := range []struct {
		name string
		kv   []string
		want int64
	}{
		{"bulwark.bulkhead.refused", []string{"bulwark.reason", "full"}, full},
		{"bulwark.bulkhead.active", nil, 0},
		{"bulwark.bulkhead.queued", nil, 0},
		{"bulwark.bulkhead.limit", nil, 2},
		{"bulwark.http.server.requests", []string{"bulwark.outcome", "success"}, ok},
		{"bulwark.http.server.requests", []string{"bulwark.outcome", "refused"}, refused},
		{"bulwark.http.server.requests", []string{"bulwark.outcome", "failure"}, 0},
	} {
		kv := append([]string{"bulwark.policy.name", "api"}, tt.kv...)
		if got := r.Int64Total(tt.name, kv...); got != tt.want {
			t.Errorf("%s%v = %d, want %d (on the wire); all: %v", tt.name, tt.kv, got, tt.want, r.Int64(tt.name))
		}
	}
}
