package bulwarkhttp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", " 5 ", "1e3", "99999999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		for _, status := range []int{429, 503} {
			se := bulwarkhttp.NewStatusError(&http.Response{StatusCode: status, Header: http.Header{"Retry-After": {v}}}, now).(*bulwarkhttp.StatusError)
			d := se.RetryAfter()
			if d < 0 || d > 365*24*time.Hour {
				t.Fatalf("RetryAfter(%q) = %v, want within [0, 1 year]", v, d)
			}
			if h, ok := bulwark.RetryAfter(se); ok != (d > 0) || h != d {
				t.Fatalf("bulwark.RetryAfter = %v, %v for %v", h, ok, d)
			}
		}
	})
}

func FuzzPriorityHeader(f *testing.F) {
	for _, s := range []string{"critical-plus", "CRITICAL_PLUS", "sheddable", "", "x"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, trusted bool) {
		var got bulwark.Priority = 99
		h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = bulwark.PriorityFrom(r.Context())
		}), policytest.PassThrough, bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return trusted }))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Bulwark-Priority"] = []string{v}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if !got.Valid() {
			t.Fatalf("header %q gave tier %v", v, got)
		}
		if got == bulwark.CriticalPlus && !trusted {
			t.Fatalf("untrusted header %q raised the tier to critical-plus", v)
		}
		if p, err := bulwark.ParsePriority(v); err == nil && p <= bulwark.Critical && got != p {
			t.Fatalf("header %q gave %v, want %v", v, got, p)
		}
	})
}

// FuzzServerHeaders: whatever Bulwark-Priority and Bulwark-Drill say, the
// handler's tier is never above the one an outer layer set, and its drill
// marker is either absent or exactly the header, 1 to 64 visible ASCII
// characters.
func FuzzServerHeaders(f *testing.F) {
	for _, s := range []string{"critical-plus", "CRITICAL_PLUS", "sheddable", "", "x y", "game-day", "\x00", "é"} {
		f.Add(s, s, int8(-2))
	}
	f.Fuzz(func(t *testing.T, prio, drill string, outer int8) {
		upstream := bulwark.Priority(outer%2 - 1) // -2 … 0
		var gotPrio bulwark.Priority
		var gotDrill string
		inner := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotPrio, gotDrill = bulwark.PriorityFrom(r.Context()), bulwark.DrillFrom(r.Context())
		}), bulwark.Chain(), bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true }))
		h := bulwarkhttp.Middleware(bulwark.Chain(), bulwarkhttp.WithPriorityFunc(func(*http.Request) bulwark.Priority { return upstream }))(inner)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Bulwark-Priority"] = []string{prio}
		req.Header["Bulwark-Drill"] = []string{drill}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if gotPrio > upstream {
			t.Fatalf("header %q raised the tier %v to %v", prio, upstream, gotPrio)
		}
		if gotDrill != "" && gotDrill != drill {
			t.Fatalf("drill %q became %q", drill, gotDrill)
		}
		valid := len(drill) > 0 && len(drill) <= 64 && !strings.ContainsFunc(drill, func(r rune) bool { return r <= ' ' || r >= 0x7f })
		if (gotDrill != "") != valid {
			t.Fatalf("drill %q: handler saw %q, valid %v", drill, gotDrill, valid)
		}
	})
}
