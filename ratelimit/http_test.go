package ratelimit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// TestHTTPHeaders serves requests through bulwarkhttp on a loopback server
// and checks the RateLimit, RateLimit-Policy and Retry-After headers and
// the status against the bucket. The bucket refills one token an hour, so
// the time the test takes does not move the values.
func TestHTTPHeaders(t *testing.T) {
	const hour = 3600
	type want struct {
		status     int
		policy     string // RateLimit-Policy
		ratelimit  string // RateLimit
		retryAfter string
	}
	tests := []struct {
		name    string
		newP    func() (bulwark.Policy, func(bulwark.Priority, string) bulwark.Quota)
		headers bool // WithRateLimitHeaders
		give    []struct{ tier, key string }
		want    []want
	}{
		{
			name: "Limiter",
			newP: func() (bulwark.Policy, func(bulwark.Priority, string) bulwark.Quota) {
				l := ratelimit.New("api", rate.Every(time.Hour), 4)
				return l, func(p bulwark.Priority, _ string) bulwark.Quota { return l.QuotaAt(p, time.Now()) }
			},
			headers: true,
			give:    []struct{ tier, key string }{{"sheddable", ""}, {"sheddable", ""}, {"sheddable", ""}, {"", ""}},
			want: []want{
				// Sheddable keeps 2 of 4: after the first take it may take 1 more.
				{200, `"api";q=4;w=14400`, `"api";r=1;t=0`, ""},
				{200, `"api";q=4;w=14400`, fmt.Sprintf(`"api";r=0;t=%d`, hour), ""},
				{503, `"api";q=4;w=14400`, fmt.Sprintf(`"api";r=0;t=%d`, hour), fmt.Sprint(hour)},
				{200, `"api";q=4;w=14400`, `"api";r=1;t=0`, ""}, // Critical keeps none
			},
		},
		{
			name: "Limiter without headers on admission",
			newP: func() (bulwark.Policy, func(bulwark.Priority, string) bulwark.Quota) {
				l := ratelimit.New("api", rate.Every(time.Hour), 1)
				return l, func(p bulwark.Priority, _ string) bulwark.Quota { return l.QuotaAt(p, time.Now()) }
			},
			give: []struct{ tier, key string }{{"", ""}, {"", ""}},
			want: []want{
				{200, "", "", ""},
				{503, `"api";q=1;w=3600`, fmt.Sprintf(`"api";r=0;t=%d`, hour), fmt.Sprint(hour)},
			},
		},
		{
			name: "Keyed",
			newP: func() (bulwark.Policy, func(bulwark.Priority, string) bulwark.Quota) {
				k := ratelimit.NewKeyed("tenant", rate.Every(time.Hour), 2)
				return k, func(p bulwark.Priority, key string) bulwark.Quota { return k.QuotaAt(key, p, time.Now()) }
			},
			headers: true,
			give:    []struct{ tier, key string }{{"", "acme"}, {"", "acme"}, {"", "acme"}, {"", "globex"}},
			want: []want{
				{200, `"tenant";q=2;w=7200`, `"tenant";r=1;t=0`, ""},
				{200, `"tenant";q=2;w=7200`, fmt.Sprintf(`"tenant";r=0;t=%d`, hour), ""},
				{429, `"tenant";q=2;w=7200`, fmt.Sprintf(`"tenant";r=0;t=%d`, hour), fmt.Sprint(hour)},
				{200, `"tenant";q=2;w=7200`, `"tenant";r=1;t=0`, ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, quotaOf := tt.newP()
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}), p, bulwarkhttp.WithRateLimitHeaders(tt.headers),
				bulwarkhttp.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") }))
			srv := httptest.NewServer(h)
			defer srv.Close()
			for i, give := range tt.give {
				req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				if give.tier != "" {
					req.Header.Set("Bulwark-Priority", give.tier)
				}
				if give.key != "" {
					req.Header.Set("X-Tenant", give.key)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				w := tt.want[i]
				if resp.StatusCode != w.status {
					t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, w.status)
				}
				for _, hv := range []struct{ name, want string }{
					{"RateLimit-Policy", w.policy}, {"RateLimit", w.ratelimit}, {"Retry-After", w.retryAfter},
				} {
					if got := resp.Header.Get(hv.name); got != hv.want {
						t.Errorf("request %d: %s: %q, want %q", i, hv.name, got, hv.want)
					}
				}
				if w.status != 200 {
					var prob struct {
						Status int    `json:"status"`
						Detail string `json:"detail"`
					}
					if err := json.Unmarshal(body, &prob); err != nil || prob.Status != w.status {
						t.Errorf("request %d: body %q, want a problem+json with status %d", i, body, w.status)
					}
					continue
				}
				// The header agrees with the bucket as it is now.
				tier := bulwark.Critical
				if give.tier != "" {
					tier, _ = bulwark.ParsePriority(give.tier)
				}
				q := quotaOf(tier, give.key)
				if got := resp.Header.Get("RateLimit"); got != "" {
					if want := fmt.Sprintf(`"%s";r=%d;t=%d`, q.Name, q.Remaining, ceilSeconds(q.Reset)); got != want {
						t.Errorf("request %d: RateLimit %q, but the bucket says %q", i, got, want)
					}
				}
			}
		})
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
