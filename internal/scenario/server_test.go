package scenario_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/metrictest"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// hourly refills one token an hour: no token comes back while a test runs.
var hourly = rate.Every(time.Hour)

// serverStack is a service behind Middleware(Chain(ratelimit, bulkhead)) on
// 127.0.0.1. "/" answers "ok <effective tier>"; "/slow" signals entered and
// waits for release (or the client going away) before it answers.
type serverStack struct {
	srv     *httptest.Server
	client  *http.Client
	pool    *bulkhead.Bulkhead
	entered chan struct{}
	release chan struct{}
}

func newServerStack(t *testing.T, burst, slots int, mp metric.MeterProvider, opts ...bulwarkhttp.Option) *serverStack {
	t.Helper()
	s := &serverStack{
		pool:    bulkhead.New("api", slots, bulkhead.WithMeterProvider(mp)),
		entered: make(chan struct{}, slots),
		release: make(chan struct{}),
	}
	limiter := ratelimit.New("api", hourly, burst, ratelimit.WithMeterProvider(mp))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+bulwark.PriorityFrom(r.Context()).String())
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s.entered <- struct{}{}
		select {
		case <-s.release:
			io.WriteString(w, "ok")
		case <-r.Context().Done(): // the client went away: nothing to write
		}
	})
	opts = append([]bulwarkhttp.Option{bulwarkhttp.WithMeterProvider(mp), bulwarkhttp.WithName("api")}, opts...)
	s.srv = serve(t, bulwarkhttp.Middleware(bulwark.Chain(limiter, s.pool), opts...)(mux))
	s.client = s.srv.Client()
	return s
}

// tiered is one request of a burst and what came back.
type tiered struct {
	tier string
	a    answer
}

// alternating sends n requests, sheddable and critical in turn (sheddable
// first), one after the other.
func alternating(t *testing.T, s *serverStack, n int) []tiered {
	t.Helper()
	out := make([]tiered, 0, n)
	for i := range n {
		tier := []string{"sheddable", "critical"}[i%2]
		out = append(out, tiered{tier, send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", tier)})
	}
	return out
}

// fillPool starts n "/slow" requests and returns once all of them are in
// the handler; finish releases them and checks they were served.
func fillPool(t *testing.T, s *serverStack, n int) (finish func()) {
	t.Helper()
	var wg sync.WaitGroup
	results := make(chan answer, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := trySendCtx(t, bounded(t), s.client, http.MethodGet, s.srv.URL+"/slow", "Bulwark-Priority", "critical")
			if err != nil {
				a.status = -1
			}
			results <- a
		}()
	}
	for range n {
		select {
		case <-s.entered:
		case <-time.After(deadline):
			t.Fatal("the slow requests never reached the handler")
		}
	}
	return func() {
		t.Helper()
		close(s.release)
		wg.Wait()
		close(results)
		for a := range results {
			if a.status != http.StatusOK {
				t.Errorf("slow request: status = %d, want 200", a.status)
			}
		}
	}
}

func TestServerShedsSheddableFirst(t *testing.T) {
	// A bucket of 10 that does not refill: a sheddable call must leave 5
	// tokens, a critical one 0 (5 % of 10 rounded down).
	s := newServerStack(t, 10, 8, nil)
	got := alternating(t, s, 16)
	want := []int{
		200, 200, 200, 200, 200, 200, // tokens 10 → 4: sheddable took 3, critical 3
		503, 200, 503, 200, 503, 200, 503, 200, // sheddable refused, critical served down to 0
		503, 503, // empty: both refused
	}
	firstRefused := ""
	for i, g := range got {
		if g.a.status != want[i] {
			t.Errorf("request %d (%s): status = %d, want %d", i+1, g.tier, g.a.status, want[i])
			continue
		}
		if g.a.status == http.StatusOK {
			if g.a.body != "ok "+g.tier {
				t.Errorf("request %d (%s): body = %q, want %q", i+1, g.tier, g.a.body, "ok "+g.tier)
			}
			continue
		}
		if firstRefused == "" {
			firstRefused = g.tier
		}
		checkRefusal(t, g.a, http.StatusServiceUnavailable)
		checkQuotaHeaders(t, g.a, "api", 10, 36000)
		if !strings.HasPrefix(g.a.problem.Detail, "ratelimit: ") {
			t.Errorf("request %d: problem detail = %q, want the limiter's message", i+1, g.a.problem.Detail)
		}
	}
	if firstRefused != "sheddable" {
		t.Errorf("first refused tier = %q, want sheddable", firstRefused)
	}
	// Never refuse a tier while admitting a lower one: once critical is
	// refused, no sheddable request may be served.
	criticalRefused := false
	for i, g := range got {
		switch {
		case g.tier == "critical" && g.a.status != http.StatusOK:
			criticalRefused = true
		case g.tier == "sheddable" && g.a.status == http.StatusOK && criticalRefused:
			t.Errorf("request %d: sheddable served after critical was refused", i+1)
		}
	}
}

func TestServerConcurrentBurst(t *testing.T) {
	const burst, perTier = 10, 20
	s := newServerStack(t, burst, 4*perTier, nil)
	var wg sync.WaitGroup
	results := make(chan tiered, 2*perTier)
	start := make(chan struct{})
	for i := range 2 * perTier {
		tier := []string{"sheddable", "critical"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := trySendCtx(t, bounded(t), s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", tier)
			if err != nil {
				a.status = -1
			}
			results <- tiered{tier, a}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	served := map[string]int{}
	for r := range results {
		switch r.a.status {
		case http.StatusOK:
			served[r.tier]++
		case http.StatusServiceUnavailable:
			checkRefusal(t, r.a, http.StatusServiceUnavailable)
			checkQuotaHeaders(t, r.a, "api", burst, burst*3600)
		default:
			t.Errorf("%s: status = %d, want 200 or 503", r.tier, r.a.status)
		}
	}
	if total := served["sheddable"] + served["critical"]; total != burst {
		t.Errorf("served %d requests, want the burst, %d", total, burst)
	}
	if served["sheddable"] > burst/2 {
		t.Errorf("served %d sheddable requests, want at most %d (half the burst is reserved)", served["sheddable"], burst/2)
	}
	if served["critical"] < burst/2 {
		t.Errorf("served %d critical requests, want at least %d", served["critical"], burst/2)
	}
}

func TestServerBulkheadFull(t *testing.T) {
	s := newServerStack(t, 100, 2, nil)
	finish := fillPool(t, s, 2)
	a := send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", "critical-plus")
	finish()
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("status with the pool full = %d, want 503", a.status)
	}
	if a.problem.Status != http.StatusServiceUnavailable || !strings.HasPrefix(a.problem.Detail, `bulkhead "api": full`) {
		t.Errorf("problem = %+v, want 503 with the bulkhead's message", a.problem)
	}
	if a.rateLimit != "" || a.rateLimitPolicy != "" {
		t.Errorf("RateLimit = %q, RateLimit-Policy = %q on a bulkhead refusal, want none", a.rateLimit, a.rateLimitPolicy)
	}
	if got := s.pool.InFlight(); got != 0 {
		t.Errorf("in flight after the slow requests ended = %d, want 0", got)
	}
	if a := send(t, s.client, http.MethodGet, s.srv.URL+"/"); a.status != http.StatusOK {
		t.Errorf("status once the pool drained = %d, want 200", a.status)
	}
}

func TestServerPriorityTrust(t *testing.T) {
	tests := []struct {
		name     string
		opts     []bulwarkhttp.Option
		wantTier string // the effective tier of a critical-plus request
		wantLast int    // a critical-plus request when critical is refused
	}{
		{name: "untrusted", wantTier: "critical", wantLast: http.StatusServiceUnavailable},
		{
			name:     "trusted",
			opts:     []bulwarkhttp.Option{bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true })},
			wantTier: "critical-plus",
			wantLast: http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 20 tokens: critical must leave 1, critical-plus 0.
			s := newServerStack(t, 20, 4, nil, tt.opts...)
			a := send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", "Critical_Plus")
			if want := "ok " + tt.wantTier; a.body != want {
				t.Fatalf("body = %q, want %q", a.body, want)
			}
			served := 0
			for range 20 {
				a = send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", "critical")
				if a.status != http.StatusOK {
					break
				}
				served++
			}
			if a.status != http.StatusServiceUnavailable || served != 18 {
				t.Fatalf("critical: served %d then status %d, want 18 then 503", served, a.status)
			}
			a = send(t, s.client, http.MethodGet, s.srv.URL+"/", "Bulwark-Priority", "critical-plus")
			if a.status != tt.wantLast {
				t.Errorf("critical-plus once critical is refused: status = %d, want %d", a.status, tt.wantLast)
			}
		})
	}
}

func TestServerKeyedQuota(t *testing.T) {
	tenants := ratelimit.NewKeyed("tenants", hourly, 2)
	h := bulwarkhttp.Middleware(tenants, bulwarkhttp.WithKeyFunc(func(r *http.Request) string {
		return r.Header.Get("Tenant")
	}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+bulwark.KeyFrom(r.Context()))
	}))
	srv := serve(t, h)
	tests := []struct {
		give string
		want int
	}{
		{"acme", http.StatusOK},
		{"acme", http.StatusOK},
		{"acme", http.StatusTooManyRequests},
		{"globex", http.StatusOK},
		{"acme", http.StatusTooManyRequests},
		{"globex", http.StatusOK},
	}
	for i, tt := range tests {
		a := send(t, srv.Client(), http.MethodGet, srv.URL, "Tenant", tt.give)
		if a.status != tt.want {
			t.Errorf("request %d (%s): status = %d, want %d", i+1, tt.give, a.status, tt.want)
			continue
		}
		if a.status == http.StatusOK {
			if a.body != "ok "+tt.give {
				t.Errorf("request %d: body = %q, want %q", i+1, a.body, "ok "+tt.give)
			}
			continue
		}
		checkRefusal(t, a, http.StatusTooManyRequests)
		checkQuotaHeaders(t, a, "tenants", 2, 7200)
	}
	if got := tenants.Keys(); got != 2 {
		t.Errorf("keys = %d, want 2", got)
	}
}

func TestServerCallerWentAway(t *testing.T) {
	r := metrictest.New(t)
	results := make(chan bulwarkhttp.Result, 1)
	s := newServerStack(t, 10, 1, r.Provider, bulwarkhttp.WithObserver(func(_ *http.Request, res bulwarkhttp.Result) {
		results <- res
	}))
	ctx, cancel := context.WithCancel(bounded(t))
	errc := make(chan error, 1)
	go func() {
		_, err := trySendCtx(t, ctx, s.client, http.MethodGet, s.srv.URL+"/slow")
		errc <- err
	}()
	<-s.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client: err = %v, want context.Canceled", err)
	}
	var res bulwarkhttp.Result
	select {
	case res = <-results:
	case <-time.After(deadline):
		t.Fatal("the middleware never reported the request")
	}
	if res.Outcome != "ignored" || res.Status != bulwarkhttp.StatusClientClosedRequest || !res.HandlerRan {
		t.Errorf("result = %+v, want ignored, 499, handler ran", res)
	}
	if n := s.pool.InFlight(); n != 0 {
		t.Errorf("in flight = %d, want 0", n)
	}
	if got := r.Int64Total("bulwark.http.server.requests", "bulwark.outcome", "ignored"); got != 1 {
		t.Errorf("bulwark.http.server.requests{ignored} = %d, want 1", got)
	}
	if got := r.Int64Total("bulwark.http.server.requests", "bulwark.outcome", "success"); got != 0 {
		t.Errorf("bulwark.http.server.requests{success} = %d, want 0", got)
	}
}
