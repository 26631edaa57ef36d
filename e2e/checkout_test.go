package e2e_test

// End-to-end tests of the reference service, examples/checkout: the
// binary is built and started on free loopback ports, and every line of
// the README's tour is driven with the clients a user would use — Go's
// HTTP client for curl, grpcurl and grpc-health-probe.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const chargeBody = `{"amount": 1299, "currency": "EUR"}`

// isProblem reports whether r is an RFC 9457 problem with status code.
func isProblem(t *testing.T, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status = %d, want %d: %s", r.code, code, r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	r.json(t, &p)
	if p.Status != code || p.Title == "" {
		t.Fatalf("problem = %s, want status %d and a title", r.body, code)
	}
}

// adminPost posts an action to the admin page.
func (in *instance) adminPost(token, policy, action string, args map[string]string) response {
	in.t.Helper()
	body, _ := json.Marshal(map[string]any{"policy": policy, "action": action, "args": args, "reason": "e2e tour"})
	hdr := []string{}
	if token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+token)
	}
	return in.do("POST", "/debug/bulwark", string(body), hdr...)
}

// policies reads the admin page's JSON: each policy's snapshot by name.
func (in *instance) policies() map[string]map[string]any {
	in.t.Helper()
	r := in.do("GET", "/debug/bulwark", "", "Accept", "application/json")
	if r.code != 200 {
		in.t.Fatalf("GET /debug/bulwark (JSON) = %s", r)
	}
	var page struct {
		Policies []map[string]any `json:"policies"`
	}
	r.json(in.t, &page)
	out := map[string]map[string]any{}
	for _, p := range page.Policies {
		out[fmt.Sprint(p["name"])] = p
	}
	return out
}

func TestCheckoutTour(t *testing.T) {
	t.Parallel()
	grpcurl := tool(t, "grpcurl", grpcurlPkg)
	probe := tool(t, "grpc-health-probe", healthProbePkg)
	// The README's tour flags (and a short drain, to end the test).
	in := startCheckout(t, "-admin-token", "s3cret", "-payments-latency", "500ms",
		"-client-rate", "5", "-catalog-rate", "10", "-drain-delay", "200ms")

	var first response
	t.Run("charge", func(t *testing.T) {
		first = in.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "tour-1")
		if first.code != 201 {
			t.Fatalf("charge = %s, want 201", first)
		}
		var ch map[string]any
		first.json(t, &ch)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range ch {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, []string{"amount", "currency", "id", "status"}) {
			t.Fatalf("charge fields = %v, want amount currency id status", keys)
		}
		if ch["amount"] != 1299.0 || ch["currency"] != "EUR" || ch["status"] != "succeeded" || ch["id"] == "" {
			t.Fatalf("charge = %s", first.body)
		}
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("a first charge says Idempotent-Replayed: %q", first.header.Get("Idempotent-Replayed"))
		}
	})
	t.Run("replay", func(t *testing.T) {
		exec0, _ := in.stats()
		r := in.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "tour-1")
		if r.code != 201 || r.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.body, first.body) {
			t.Fatalf("replay = %s, want 201, Idempotent-Replayed: true and the first body %s", r, first.body)
		}
		if exec1, _ := in.stats(); exec1 != exec0 {
			t.Fatalf("charges_executed %d → %d on a replay, want unchanged", exec0, exec1)
		}
	})
	t.Run("422 key reused for another charge", func(t *testing.T) {
		r := in.do("POST", "/v1/charges", `{"amount": 5000, "currency": "EUR"}`, "Idempotency-Key", "tour-1")
		isProblem(t, r, 422)
	})
	t.Run("409 duplicate in flight", func(t *testing.T) {
		// The provider takes 500 ms: duplicates sent meanwhile are
		// answered 409 until the first is done, then replayed.
		var wg sync.WaitGroup
		answers := make([]response, 8)
		for i := range answers {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 20 * time.Millisecond)
				answers[i] = in.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "tour-2")
			})
		}
		wg.Wait()
		var n201, n409 int
		var body []byte
		for _, r := range answers {
			switch r.code {
			case 201:
				n201++
				if body != nil && !bytes.Equal(body, r.body) {
					t.Fatalf("two different charges for one key: %s and %s", body, r.body)
				}
				body = r.body
			case 409:
				n409++
				isProblem(t, r, 409)
				if r.header.Get("Retry-After") == "" {
					t.Fatalf("409 without Retry-After: %s", r)
				}
			default:
				t.Fatalf("duplicate = %s, want 201 or 409", r)
			}
		}
		if n201 == 0 || n409 == 0 {
			t.Fatalf("%d × 201, %d × 409, want both", n201, n409)
		}
	})
	t.Run("400", func(t *testing.T) {
		isProblem(t, in.do("POST", "/v1/charges", chargeBody), 400) // no key
		isProblem(t, in.do("POST", "/v1/charges", `{"amount": 12`, "Idempotency-Key", "tour-3"), 400)
		isProblem(t, in.do("POST", "/v1/charges", `{"amount": -5, "currency": "EUR"}`, "Idempotency-Key", "tour-4"), 400)
		isProblem(t, in.do("POST", "/v1/charges", `{"amount": 5, "currency": "EURO"}`, "Idempotency-Key", "tour-5"), 400)
		isProblem(t, in.do("POST", "/v1/charges", `{"amount": 5, "currency": "EUR", "tip": 1}`, "Idempotency-Key", "tour-6"), 400)
	})
	t.Run("catalog", func(t *testing.T) {
		r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "tour")
		var cat struct {
			Items           []map[string]any `json:"items"`
			Recommendations []map[string]any `json:"recommendations"`
		}
		r.json(t, &cat)
		if r.code != 200 || len(cat.Items) == 0 || len(cat.Recommendations) == 0 {
			t.Fatalf("catalog = %s, want 200 with items and recommendations", r)
		}
		if r.header.Get("Bulwark-Degraded") != "" || r.header.Get("RateLimit") == "" || r.header.Get("RateLimit-Policy") == "" {
			t.Fatalf("catalog headers = %v, want RateLimit headers and no Bulwark-Degraded", r.header)
		}
	})
	t.Run("grpc", func(t *testing.T) {
		out, code := run(t, grpcurl, "-plaintext", in.grpcAddr, "list")
		if code != 0 || !strings.Contains(out, "checkout.v1.Checkout") || !strings.Contains(out, "grpc.health.v1.Health") {
			t.Fatalf("grpcurl list = %d %q, want the Checkout and Health services", code, out)
		}
		charge := func(verbose bool) (string, map[string]any) {
			args := []string{"-H", "idempotency-key: tour-grpc-1", "-d", `{"amount": 500, "currency": "USD"}`}
			if verbose {
				args = append([]string{"-v"}, args...)
			}
			out, code := run(t, grpcurl, append(append([]string{"-plaintext"}, args...), in.grpcAddr, "checkout.v1.Checkout/CreateCharge")...)
			if code != 0 {
				t.Fatalf("grpcurl CreateCharge = %d %q", code, out)
			}
			i := strings.Index(out, "{")
			j := strings.LastIndex(out, "}")
			var ch map[string]any
			if i < 0 || j < i || json.Unmarshal([]byte(out[i:j+1]), &ch) != nil {
				t.Fatalf("grpcurl CreateCharge answer %q: no JSON message", out)
			}
			return out, ch
		}
		_, ch1 := charge(false)
		if ch1["id"] == "" || ch1["status"] != "succeeded" || ch1["currency"] != "USD" {
			t.Fatalf("CreateCharge = %v", ch1)
		}
		out2, ch2 := charge(true)
		if ch2["id"] != ch1["id"] || !strings.Contains(out2, "idempotent-replayed: true") {
			t.Fatalf("CreateCharge again = %q, want the id %v replayed (idempotent-replayed: true)", out2, ch1["id"])
		}
		if out, code = run(t, grpcurl, "-plaintext", "-H", "idempotency-key: tour-grpc-2", "-d", `{"amount": 0, "currency": "USD"}`,
			in.grpcAddr, "checkout.v1.Checkout/CreateCharge"); code == 0 || !strings.Contains(out, "InvalidArgument") {
			t.Fatalf("CreateCharge of 0 = %d %q, want InvalidArgument", code, out)
		}
		out, code = run(t, grpcurl, "-plaintext", "-v", "-H", "bulwark-priority: critical", "-H", "x-client-id: tour-grpc",
			in.grpcAddr, "checkout.v1.Checkout/ListCatalog")
		if code != 0 || !strings.Contains(out, `"items"`) || !strings.Contains(out, `"recommendations"`) {
			t.Fatalf("grpcurl ListCatalog = %d %q", code, out)
		}
		for _, svc := range []string{"", "readyz", "livez"} {
			args := []string{"-addr", in.grpcAddr}
			if svc != "" {
				args = append(args, "-service", svc)
			}
			out, code := run(t, probe, args...)
			if code != 0 || !strings.Contains(out, "SERVING") {
				t.Fatalf("grpc-health-probe %v = %d %q, want SERVING", args, code, out)
			}
		}
	})
	t.Run("429 over a client's quota", func(t *testing.T) {
		var limited response
		for range 12 {
			if r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "greedy"); r.code == 429 {
				limited = r
				break
			} else if r.code != 200 {
				t.Fatalf("greedy catalog call = %s, want 200 or 429", r)
			}
		}
		isProblem(t, limited, 429)
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
			if limited.header.Get(h) == "" {
				t.Fatalf("429 without %s: %s", h, limited)
			}
		}
		// Another client is not refused for the greedy one.
		if r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "polite"); r.code != 200 {
			t.Fatalf("another client's call = %s, want 200", r)
		}
	})
	t.Run("503 over the shared capacity, lowest tier first", func(t *testing.T) {
		// Clients within their own quotas, together over -catalog-rate 10:
		// sheddable calls are shed (503) while critical ones still pass.
		var shed response
		for i := range 40 {
			r := in.do("GET", "/v1/catalog", "", "X-Client-Id", fmt.Sprintf("crowd-%d", i), "Bulwark-Priority", "sheddable")
			if r.code == 503 {
				shed = r
				break
			}
		}
		isProblem(t, shed, 503)
		if shed.header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After: %s", shed)
		}
		if r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "vip", "Bulwark-Priority", "critical"); r.code != 200 {
			t.Fatalf("a critical call while sheddable ones are shed = %s, want 200", r)
		}
	})
	t.Run("health", func(t *testing.T) {
		r := in.do("GET", "/readyz?verbose", "")
		if r.code != 200 || !strings.Contains(string(r.body), "[+]payments-primary ok") || !strings.Contains(string(r.body), "readyz check passed") {
			t.Fatalf("/readyz?verbose = %s", r)
		}
		r = in.do("GET", "/readyz?verbose&exclude=payments-standby", "")
		if r.code != 200 || !strings.Contains(string(r.body), "payments-standby excluded") {
			t.Fatalf("/readyz?verbose&exclude=payments-standby = %s", r)
		}
		for _, p := range []string{"/livez", "/startupz", "/readyz"} {
			if r := in.do("GET", p, ""); r.code != 200 || strings.TrimSpace(string(r.body)) != "ok" {
				t.Fatalf("%s = %s, want 200 ok", p, r)
			}
		}
	})
	t.Run("metrics", func(t *testing.T) {
		r := in.do("GET", "/metrics", "")
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics = %d %v", r.code, r.header)
		}
		for _, name := range []string{
			"bulwark_breaker_state", "bulwark_bulkhead_", "bulwark_ratelimit_", "bulwark_retry_",
			"bulwark_failover_", "bulwark_degrade_", "bulwark_health_", "bulwark_http_server_",
			"bulwark_idempotency_",
		} {
			if !bytes.Contains(r.body, []byte("\n"+name)) {
				t.Errorf("/metrics has no %s… series", name)
			}
		}
	})
	t.Run("admin", func(t *testing.T) {
		r := in.do("GET", "/debug/bulwark", "", "Accept", "text/html")
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("admin page = %d %v", r.code, r.header)
		}
		ps := in.policies()
		for _, name := range []string{"charges", "payments", "payments-bulkhead", "payments-drill", "recommendations", "health"} {
			if _, ok := ps[name]; !ok {
				t.Errorf("admin page lacks %q (has %v)", name, slices.Sorted(func(y func(string) bool) {
					for k := range ps {
						if !y(k) {
							return
						}
					}
				}))
			}
		}
		if r := in.adminPost("", "recommendations", "on", nil); r.code != 401 {
			t.Fatalf("admin POST without the token = %s, want 401", r)
		}
		if r := in.adminPost("s3cret", "recommendations", "on", nil); r.code != 200 {
			t.Fatalf("admin POST recommendations on = %s, want 200", r)
		}
		r = in.do("GET", "/v1/catalog", "", "X-Client-Id", "switch")
		if r.code != 200 || r.header.Get("Bulwark-Degraded") != "recommendations" || bytes.Contains(r.body, []byte("recommendations")) {
			t.Fatalf("catalog with the switch on = %s, want no recommendations and Bulwark-Degraded: recommendations", r)
		}
		if r := in.adminPost("s3cret", "recommendations", "release", nil); r.code != 200 {
			t.Fatalf("admin POST recommendations release = %s, want 200", r)
		}
		if r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "switch"); !bytes.Contains(r.body, []byte("recommendations")) {
			t.Fatalf("catalog after release = %s, want recommendations back", r)
		}
	})
	t.Run("drill", func(t *testing.T) {
		// Every attempt to reach a provider fails: both breakers open,
		// charges are refused fast with 503 + Retry-After, the
		// recommendations switch turns on, readiness warns but passes.
		if r := in.adminPost("s3cret", "payments-drill", "arm", map[string]string{
			"error": "remote-unavailable", "expiry": "5m",
		}); r.code != 200 {
			t.Fatalf("arm the drill = %s", r)
		}
		_, calls0 := in.stats()
		var refused response
		for i := range 30 {
			r := in.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", fmt.Sprintf("drill-%d", i))
			if r.code == 201 {
				t.Fatalf("a charge succeeded while every attempt fails: %s", r)
			}
			if r.code == 503 && strings.Contains(string(r.body), "no endpoint") {
				refused = r
				break
			}
		}
		isProblem(t, refused, 503)
		if refused.header.Get("Retry-After") == "" {
			t.Fatalf("refused charge without Retry-After: %s", refused)
		}
		if _, calls1 := in.stats(); calls1 != calls0 {
			t.Fatalf("payment_calls %d → %d while the drill injects every failure, want unchanged", calls0, calls1)
		}
		r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "drill")
		if r.header.Get("Bulwark-Degraded") != "recommendations" {
			t.Fatalf("catalog while the payment breakers are open = %s, want Bulwark-Degraded: recommendations", r)
		}
		eventually(t, 5*time.Second, "readyz warns of the open breakers", func() bool {
			r := in.do("GET", "/readyz?verbose", "")
			return r.code == 200 && strings.Contains(string(r.body), "[!]payments-primary") &&
				strings.Contains(string(r.body), "[!]payments-standby")
		})
		if r := in.adminPost("s3cret", "payments-drill", "disarm", nil); r.code != 200 {
			t.Fatalf("disarm the drill = %s", r)
		}
	})
	t.Run("SIGTERM exits 0", func(t *testing.T) {
		in.signal(syscall.SIGTERM)
		if code := in.waitExit(15 * time.Second); code != 0 {
			t.Fatalf("exit code %d, want 0\n%s", code, in.Logs())
		}
	})
}

func TestCheckoutFailover(t *testing.T) {
	t.Parallel()
	// The primary answers 503 to everything: charges move to the standby,
	// the primary's breaker opens, the recommendations switch flips, and
	// readiness warns without failing.
	in := startCheckout(t, "-payments-fail-rate", "1", "-payments-break", "1m")
	for i := range 10 {
		if r := in.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", fmt.Sprintf("fo-%d", i)); r.code != 201 {
			t.Fatalf("charge %d = %s, want 201 from the standby", i, r)
		}
	}
	executed, calls := in.stats()
	if executed != 10 || calls <= 10 {
		t.Fatalf("stats = %d executed, %d payment calls, want 10 and more than 10 (the primary's failures)", executed, calls)
	}
	ps := in.policies()
	if st := fmt.Sprint(ps["payments"]["state"]); !strings.Contains(st, "127.0.0.1") {
		t.Fatalf("failover set state = %q, want the standby's address", st)
	}
	r := in.do("GET", "/v1/catalog", "")
	if r.code != 200 || r.header.Get("Bulwark-Degraded") != "recommendations" {
		t.Fatalf("catalog = %s, want Bulwark-Degraded: recommendations", r)
	}
	eventually(t, 5*time.Second, "readyz warns of the primary's breaker", func() bool {
		r := in.do("GET", "/readyz?verbose", "")
		return r.code == 200 && strings.Contains(string(r.body), "[!]payments-primary") &&
			strings.Contains(string(r.body), "[+]payments-standby ok")
	})
}

func TestCheckoutDuplicateCharges(t *testing.T) {
	t.Parallel()
	in := startCheckout(t, "-payments-latency", "100ms")
	executed0, _ := in.stats()
	const n = 200
	var wg sync.WaitGroup
	answers := make([]response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = in.try("POST", "/v1/charges", chargeBody, "Idempotency-Key", "dup-1")
		})
	}
	close(start)
	wg.Wait()
	var body []byte
	codes := map[int]int{}
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatalf("duplicate %d: %v", i, errs[i])
		}
		codes[r.code]++
		switch r.code {
		case 201:
			if body != nil && !bytes.Equal(body, r.body) {
				t.Fatalf("two different charges for one key: %s and %s", body, r.body)
			}
			body = r.body
		case 409:
		default:
			t.Fatalf("duplicate %d = %s, want 201 or 409", i, r)
		}
	}
	executed1, _ := in.stats()
	if executed1-executed0 != 1 {
		t.Fatalf("charges_executed rose by %d for %d duplicates (answers %v), want 1", executed1-executed0, n, codes)
	}
	if codes[201] == 0 {
		t.Fatalf("answers %v, want at least one 201", codes)
	}
	t.Logf("answers: %v", codes)
}

func TestCheckoutSharedRedis(t *testing.T) {
	t.Parallel()
	rs := redisServer(t)
	a := startCheckout(t, "-redis", rs.addr, "-client-rate", "5")
	b := startCheckout(t, "-redis", rs.addr, "-client-rate", "5")

	if r := a.do("GET", "/readyz?verbose", ""); r.code != 200 || !strings.Contains(string(r.body), "[+]redis ok") {
		t.Fatalf("/readyz?verbose = %s, want the redis check passing", r)
	}
	// The client quota is fleet-wide: 5/s across both instances, so ten
	// quick calls split between them cannot all pass.
	var limited int
	for i := range 10 {
		in := a
		if i%2 == 1 {
			in = b
		}
		switch r := in.do("GET", "/v1/catalog", "", "X-Client-Id", "fleet-client"); r.code {
		case 200:
		case 429:
			limited++
		default:
			t.Fatalf("catalog = %s", r)
		}
	}
	if limited == 0 {
		t.Fatal("10 calls of one client over two instances sharing a 5/s quota: none limited")
	}
	r1 := a.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "fleet-1")
	if r1.code != 201 {
		t.Fatalf("charge on A = %s", r1)
	}
	r2 := b.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "fleet-1")
	if r2.code != 201 || r2.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r1.body, r2.body) {
		t.Fatalf("the same charge on B = %s, want A's answer %s replayed", r2, r1.body)
	}
	if executed, _ := b.stats(); executed != 0 {
		t.Fatalf("B's charges_executed = %d, want 0 (replayed from A's record)", executed)
	}

	// Redis goes away: readiness fails (the redis check is critical) while
	// liveness passes; the catalog still serves (client quotas fail open,
	// the capacity falls back to a local limiter); charges are refused
	// with 503 + Retry-After rather than run without the fleet's
	// idempotency records.
	rs.stop()
	eventually(t, 10*time.Second, "readiness fails without Redis", func() bool {
		r := a.do("GET", "/readyz?verbose", "")
		return r.code == 503 && strings.Contains(string(r.body), "[-]redis failed")
	})
	if r := a.do("GET", "/livez", ""); r.code != 200 {
		t.Fatalf("/livez without Redis = %s, want 200", r)
	}
	if r := a.do("GET", "/v1/catalog", "", "X-Client-Id", "outage"); r.code != 200 {
		t.Fatalf("catalog without Redis = %s, want 200", r)
	}
	r := a.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "outage-1")
	isProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("charge without Redis = %s, want Retry-After", r)
	}
	if executed, _ := a.stats(); executed != 1 {
		t.Fatalf("A's charges_executed = %d, want 1 (nothing ran without the store)", executed)
	}

	// Redis is back (empty): the instance heals without a restart.
	if !rs.start() {
		t.Fatal("redis-server did not start again")
	}
	eventually(t, 10*time.Second, "readiness passes again", func() bool {
		return a.do("GET", "/readyz", "").code == 200
	})
	if r := a.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "outage-1"); r.code != 201 {
		t.Fatalf("charge once Redis is back = %s, want 201", r)
	}
}

func TestCheckoutStartsWithoutRedis(t *testing.T) {
	t.Parallel()
	// A Redis that does not answer at start does not stop the instance:
	// it serves liveness and fails readiness until Redis answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	in := startCheckout(t, "-redis", dead)
	if r := in.do("GET", "/livez", ""); r.code != 200 {
		t.Fatalf("/livez = %s, want 200", r)
	}
	if r := in.do("GET", "/readyz", ""); r.code != 503 || !strings.Contains(string(r.body), "[-]redis failed") {
		t.Fatalf("/readyz = %s, want 503 naming redis", r)
	}
}

func TestCheckoutDrain(t *testing.T) {
	t.Parallel()
	probe := tool(t, "grpc-health-probe", healthProbePkg)
	in := startCheckout(t, "-drain-delay", "2s", "-payments-latency", "20ms")

	// A load balancer: it stops sending once readiness failed three
	// probes in a row, 100 ms apart (Kubernetes' failureThreshold, sped
	// up), well within the drain delay (2 s, so that grpc-health-probe
	// has time to see NOT_SERVING on a loaded machine).
	var out atomic.Bool
	balancerDone := make(chan struct{})
	go func() {
		defer close(balancerDone)
		failed := 0
		for range 200 {
			r, err := in.try("GET", "/readyz", "")
			if err == nil && r.code == 503 {
				if failed++; failed == 3 {
					out.Store(true)
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// Light, bounded load: four clients, a charge or a catalog call every
	// 20 ms each, for at most 600 requests in all.
	var (
		sent, afterTerm atomic.Int64
		termed          atomic.Bool
		mu              sync.Mutex
		failures        []string
		wg              sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 150 && !out.Load(); i++ {
				var r response
				var err error
				if i%2 == 0 {
					r, err = in.try("POST", "/v1/charges", chargeBody, "Idempotency-Key", fmt.Sprintf("drain-%d-%d", w, i))
				} else {
					r, err = in.try("GET", "/v1/catalog", "", "X-Client-Id", fmt.Sprintf("drain-%d", w))
				}
				sent.Add(1)
				if termed.Load() {
					afterTerm.Add(1)
				}
				if err != nil || r.code >= 300 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%v %v", r, err))
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	termed.Store(true)
	in.signal(syscall.SIGTERM)
	<-balancerDone
	if !out.Load() {
		t.Fatal("readiness never failed after SIGTERM")
	}
	// Draining, the gRPC health service says NOT_SERVING too, while
	// liveness still passes.
	if o, code := run(t, probe, "-addr", in.grpcAddr); code == 0 || !strings.Contains(o, "NOT_SERVING") {
		t.Errorf("grpc-health-probe while draining = %d %q, want NOT_SERVING", code, o)
	}
	if r, err := in.try("GET", "/livez", ""); err != nil || r.code != 200 {
		t.Errorf("/livez while draining = %v %v, want 200", r, err)
	}
	wg.Wait()
	if code := in.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during the drain: %v", len(failures), sent.Load(), failures)
	}
	if afterTerm.Load() == 0 {
		t.Fatal("no request was served after SIGTERM: the drain was not exercised")
	}
	if !strings.Contains(in.Logs(), "graceful=true") {
		t.Fatalf("the drain was not graceful:\n%s", in.Logs())
	}
	t.Logf("%d requests, %d after SIGTERM, none failed", sent.Load(), afterTerm.Load())
}

func TestCheckoutDegradeConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "degrade.json")
	write := func(doc string) {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"switches": {"recommendations": {"on": true, "reason": "INC-42"}}}`)
	in := startCheckout(t, "-degrade-config", path, "-degrade-interval", "100ms")
	degraded := func() bool {
		r := in.do("GET", "/v1/catalog", "")
		return r.header.Get("Bulwark-Degraded") == "recommendations" && !bytes.Contains(r.body, []byte("recommendations"))
	}
	eventually(t, 5*time.Second, "the config file turns the switch on", degraded)
	write(`{"switches": {"recommendations": {"on": false, "reason": "resolved"}}}`)
	eventually(t, 5*time.Second, "the edited file turns it off", func() bool { return !degraded() })
	sw := in.policies()["recommendations"]
	if sw["source"] != "config" || sw["reason"] != "resolved" {
		t.Fatalf("switch snapshot = %v, want source config, reason resolved", sw)
	}
}

func TestCheckoutSharedBreakers(t *testing.T) {
	t.Parallel()
	// Two instances on one redis-server share the payment breakers' state:
	// when A's primary fails and its breaker opens, B stops sending to
	// its primary too (within a refresh interval), without a failure of
	// its own, and degrades as A does.
	rs := redisServer(t)
	a := startCheckout(t, "-redis", rs.addr, "-payments-fail-rate", "1", "-payments-break", "1m")
	b := startCheckout(t, "-redis", rs.addr)
	for i := range 6 {
		if r := a.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", fmt.Sprintf("sb-%d", i)); r.code != 201 {
			t.Fatalf("charge on A = %s, want 201 from the standby", r)
		}
	}
	eventually(t, 10*time.Second, "B sees the primary's breaker open", func() bool {
		r := b.do("GET", "/readyz?verbose", "")
		return r.code == 200 && strings.Contains(string(r.body), "[!]payments-primary")
	})
	_, calls0 := b.stats()
	if r := b.do("POST", "/v1/charges", chargeBody, "Idempotency-Key", "sb-b"); r.code != 201 {
		t.Fatalf("charge on B = %s, want 201", r)
	}
	if _, calls1 := b.stats(); calls1-calls0 != 1 {
		t.Fatalf("B's payment_calls rose by %d for one charge, want 1 (straight to the standby)", calls1-calls0)
	}
	if r := b.do("GET", "/v1/catalog", ""); r.header.Get("Bulwark-Degraded") != "recommendations" {
		t.Fatalf("B's catalog = %s, want Bulwark-Degraded: recommendations", r)
	}
}
