package bulwarkhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/health"
)

var errHealthDown = errors.New("connection refused")

// healthFixture is a Checker with a passing and a failing readiness check,
// a warning one, a liveness and a startup check.
func healthFixture(t *testing.T) *health.Checker {
	t.Helper()
	c := health.New()
	t.Cleanup(func() { _ = c.Close() })
	c.Register("db", func(ctx context.Context) error {
		health.Observe(ctx, 3, "{connection}")
		return nil
	}, health.WithComponentType("datastore"))
	c.Register("cache", func(context.Context) error { return errHealthDown }, health.WithCritical(false))
	c.Register("queue", func(context.Context) error { return errors.New("lag\n10s") })
	c.Register("loop", func(context.Context) error { return nil }, health.WithKind(health.Liveness))
	c.Register("warm", func(context.Context) error { return nil }, health.WithKind(health.Startup))
	return c
}

func healthServe(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHealthProbes(t *testing.T) {
	h := bulwarkhttp.Health(healthFixture(t))
	tests := []struct {
		give     string
		want     int
		wantBody string
	}{
		{"/livez", 200, "ok\n"},
		{"/startupz", 200, "ok\n"},
		{"/readyz", 503, "[-]queue failed: lag 10s\nreadyz check failed\n"},
		{"/readyz?exclude=queue", 200, "ok\n"},
		{"/readyz/", 503, "[-]queue failed: lag 10s\nreadyz check failed\n"},
		{"/health/readyz?exclude=queue", 200, "ok\n"},
		{"/a/b/livez", 200, "ok\n"},
		{"/readyz/db", 200, "ok\n"},
		{"/readyz/db/", 200, "ok\n"},
		{"/health/readyz/db", 200, "ok\n"},
		{"/readyz/cache", 200, "[!]cache warn: connection refused\n"},
		{"/readyz/queue", 503, "[-]queue failed: lag 10s\n"},
		{"/livez/loop", 200, "ok\n"},
		{"/startupz/warm", 200, "ok\n"},
		{"/readyz/loop", 404, `readyz: no check "loop"` + "\n"},
		{"/livez/db", 404, `livez: no check "db"` + "\n"},
		{"/readyz/nope", 404, `readyz: no check "nope"` + "\n"},
		{"/readyz/drain", 404, `readyz: no check "drain"` + "\n"},
		{"/", 404, "404 page not found\n"},
		{"/healthz", 404, "404 page not found\n"},
		{"/readyzz", 404, "404 page not found\n"},
		{"", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.Path, r.URL.RawQuery, _ = strings.Cut(tt.give, "?")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want || w.Body.String() != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.give, w.Code, w.Body, tt.want, tt.wantBody)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
}

func TestHealthVerbose(t *testing.T) {
	h := bulwarkhttp.Health(healthFixture(t))
	w := healthServe(h, "GET", "/readyz?verbose&exclude=queue&exclude=nope&exclude=loop")
	want := "[+]db ok\n" +
		"[!]cache warn: connection refused\n" +
		"[+]queue excluded: ok\n" +
		`warn: some health checks cannot be excluded: no matches for "nope", "loop"` + "\n" +
		"readyz check passed\n"
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("verbose = %d\n%s\nwant 200\n%s", w.Code, w.Body, want)
	}
	w = healthServe(h, "GET", "/readyz?verbose=1")
	want = "[+]db ok\n[!]cache warn: connection refused\n[-]queue failed: lag 10s\nreadyz check failed\n"
	if w.Code != 503 || w.Body.String() != want {
		t.Errorf("verbose failing = %d\n%s\nwant 503\n%s", w.Code, w.Body, want)
	}
	w = healthServe(h, "GET", "/livez?verbose")
	if want := "[+]loop ok\nlivez check passed\n"; w.Body.String() != want {
		t.Errorf("livez verbose = %q, want %q", w.Body, want)
	}
	w = healthServe(h, "GET", "/readyz/db?verbose")
	if want := "[+]db ok\n"; w.Code != 200 || w.Body.String() != want {
		t.Errorf("per-check verbose = %d %q, want 200 %q", w.Code, w.Body, want)
	}
}

func TestHealthDraining(t *testing.T) {
	c := healthFixture(t)
	h := bulwarkhttp.Health(c)
	c.StartDrain()
	w := healthServe(h, "GET", "/readyz?verbose&exclude=queue&exclude=drain")
	if w.Code != 503 || !strings.HasPrefix(w.Body.String(), "[-]drain failed: health: draining\n") {
		t.Errorf("readyz while draining = %d %q, want 503 led by the drain entry", w.Code, w.Body)
	}
	if w := healthServe(h, "GET", "/livez"); w.Code != 200 {
		t.Errorf("livez while draining = %d, want 200", w.Code)
	}
	if w := healthServe(h, "GET", "/readyz/db"); w.Code != 200 {
		t.Errorf("one check while draining = %d, want 200: it answers for the check", w.Code)
	}
}

func TestHealthHEADAndMethods(t *testing.T) {
	h := bulwarkhttp.Health(healthFixture(t))
	for _, tt := range []struct {
		target string
		accept string
		want   int
	}{
		{"/livez", "", 200}, {"/readyz", "", 503}, {"/readyz", "application/health+json", 503},
		{"/readyz/db", "", 200}, {"/nope", "", 404},
	} {
		get := healthServe(h, "GET", tt.target, "Accept", tt.accept)
		head := healthServe(h, "HEAD", tt.target, "Accept", tt.accept)
		if head.Code != tt.want || get.Code != tt.want {
			t.Errorf("%s: HEAD %d, GET %d; want %d", tt.target, head.Code, get.Code, tt.want)
		}
		if head.Body.Len() != 0 {
			t.Errorf("HEAD %s wrote a body: %q", tt.target, head.Body)
		}
		for _, k := range []string{"Cache-Control", "Content-Type", "Content-Length"} {
			if head.Header().Get(k) != get.Header().Get(k) {
				t.Errorf("HEAD %s: %s = %q, GET has %q", tt.target, k, head.Header().Get(k), get.Header().Get(k))
			}
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		w := healthServe(h, m, "/readyz")
		if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s /readyz = %d, Allow %q, Cache-Control %q; want 405, GET, HEAD, no-store",
				m, w.Code, w.Header().Get("Allow"), w.Header().Get("Cache-Control"))
		}
	}
}

type healthDoc struct {
	Status string `json:"status"`
	Output string `json:"output"`
	Checks map[string][]struct {
		ComponentType string  `json:"componentType"`
		ObservedValue any     `json:"observedValue"`
		ObservedUnit  string  `json:"observedUnit"`
		Status        string  `json:"status"`
		Time          string  `json:"time"`
		Output        *string `json:"output"`
	} `json:"checks"`
}

func TestHealthJSON(t *testing.T) {
	c := healthFixture(t)
	h := bulwarkhttp.Health(c)
	w := healthServe(h, "GET", "/readyz", "Accept", "text/html, application/health+json;q=0.9")
	if w.Code != 503 || w.Header().Get("Content-Type") != "application/health+json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /readyz (health+json) = %d, %q, %q", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
	}
	var doc healthDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if doc.Status != "fail" || doc.Output != "readyz: fail: cache, queue" || len(doc.Checks) != 3 {
		t.Errorf("doc = %+v, want fail, output naming cache and queue, 3 checks", doc)
	}
	db := doc.Checks["db:status"]
	if len(db) != 1 || db[0].Status != "pass" || db[0].ComponentType != "datastore" || db[0].Output != nil ||
		db[0].ObservedValue != float64(3) || db[0].ObservedUnit != "{connection}" {
		t.Errorf("db:status = %+v, want pass, datastore, no output, observed 3 {connection}", db)
	}
	if _, err := time.Parse(time.RFC3339Nano, db[0].Time); err != nil {
		t.Errorf("time %q: %v", db[0].Time, err)
	}
	if cache := doc.Checks["cache:status"]; len(cache) != 1 || cache[0].Status != "warn" || cache[0].Output == nil || *cache[0].Output != "connection refused" || cache[0].ComponentType != "component" {
		t.Errorf("cache:status = %+v, want warn with output", cache)
	}
	if q := doc.Checks["queue:status"]; len(q) != 1 || q[0].Status != "fail" || *q[0].Output != "lag 10s" {
		t.Errorf("queue:status = %+v, want fail with output", q)
	}

	// warn is 200; pass has no output.
	w = healthServe(h, "GET", "/readyz?exclude=queue", "Accept", "application/health+json")
	doc = healthDoc{}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	if w.Code != 200 || doc.Status != "warn" {
		t.Errorf("warn = %d %q, want 200 warn", w.Code, doc.Status)
	}
	w = healthServe(h, "GET", "/livez", "Accept", "APPLICATION/HEALTH+JSON")
	doc = healthDoc{}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	if w.Code != 200 || doc.Status != "pass" || doc.Output != "" || len(doc.Checks["loop:status"]) != 1 {
		t.Errorf("pass = %d %+v, want 200 pass without output", w.Code, doc)
	}
	w = healthServe(h, "GET", "/readyz/queue", "Accept", "application/health+json")
	doc = healthDoc{}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	if w.Code != 503 || doc.Status != "fail" || len(doc.Checks) != 1 {
		t.Errorf("one check = %d %+v, want 503 fail with one check", w.Code, doc)
	}
	c.StartDrain()
	w = healthServe(h, "GET", "/readyz", "Accept", "application/health+json")
	doc = healthDoc{}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	if d := doc.Checks["drain:status"]; len(d) != 1 || d[0].Status != "fail" || d[0].ComponentType != "system" || d[0].Time != "" {
		t.Errorf("drain:status = %+v, want fail, system, no time", d)
	}
}

func TestHealthAccept(t *testing.T) {
	h := bulwarkhttp.Health(healthFixture(t))
	for _, tt := range []struct {
		give []string
		want bool
	}{
		{nil, false},
		{[]string{"application/json"}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/health+json"}, true},
		{[]string{" application/health+json ; charset=utf-8"}, true},
		{[]string{"text/plain", "application/health+json"}, true},
		{[]string{"application/health+json;q=0"}, false},
		{[]string{"application/health+json;q=0.0, text/plain"}, false},
		{[]string{"application/health+json;q=bogus"}, true},
		{[]string{"application/health+jsonx"}, false},
		{[]string{",,;;=,"}, false},
	} {
		r := httptest.NewRequest("GET", "/livez", nil)
		for _, v := range tt.give {
			r.Header.Add("Accept", v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Header().Get("Content-Type") == "application/health+json"; got != tt.want {
			t.Errorf("Accept %q: health+json = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestHealthNil(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.HasPrefix(v.(string), "bulwarkhttp: ") {
			t.Errorf("Health(nil) panicked with %v, want a bulwarkhttp message", v)
		}
	}()
	bulwarkhttp.Health(nil)
}

// TestHealthUnencodableObservedValue: a value JSON cannot encode is left
// out, not an error.
func TestHealthUnencodableObservedValue(t *testing.T) {
	c := health.New()
	defer c.Close()
	c.Register("odd", func(ctx context.Context) error {
		health.Observe(ctx, func() {}, "fn")
		return nil
	})
	w := healthServe(bulwarkhttp.Health(c), "GET", "/readyz", "Accept", "application/health+json")
	var doc healthDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != 200 || doc.Checks["odd:status"][0].ObservedValue != nil {
		t.Errorf("= %d %q (%v), want 200 and no observedValue", w.Code, w.Body, err)
	}
}

// TestHealthHangingCheck: a check that hangs past its timeout answers 503
// at the timeout instead of hanging the probe.
func TestHealthHangingCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		c := health.New()
		defer c.Close()
		c.Register("hangs", func(context.Context) error { <-release; return nil })
		start := time.Now()
		w := healthServe(bulwarkhttp.Health(c), "GET", "/readyz")
		if w.Code != 503 || time.Since(start) != health.DefaultTimeout || !strings.Contains(w.Body.String(), "timed out after 1s") {
			t.Errorf("= %d %q after %v, want 503 timed out after 1s", w.Code, w.Body, time.Since(start))
		}
		close(release)
	})
}

// healthLoopback starts srv on 127.0.0.1 and returns its base URL and a channel
// that receives Serve's error when the server stops.
func healthLoopback(t *testing.T, srv *http.Server) (url string, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), done
}

// TestHealthDrainLoopback drains a real loopback server under bounded load.
// The workers play the load balancer: they stop sending once they see
// /readyz fail. Every request they sent must succeed — including a slow
// one still running when Shutdown begins — and /readyz must answer 503,
// not a refused connection, for the whole delay before the listener closes.
func TestHealthDrainLoopback(t *testing.T) {
	const delay = 300 * time.Millisecond
	c := health.New(health.WithDrainDelay(delay), health.WithDrainTimeout(5*time.Second))
	defer c.Close()
	c.Register("db", func(context.Context) error { return nil })
	slowStarted := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/readyz", bulwarkhttp.Health(c))
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		d := 2 * time.Millisecond
		if r.URL.Query().Has("slow") {
			close(slowStarted)
			d = delay + 200*time.Millisecond // outlives the delay: in flight when Shutdown starts
		}
		time.Sleep(d)
		_, _ = io.WriteString(w, "done")
	})
	srv := &http.Server{Handler: mux}
	base, served := healthLoopback(t, srv)
	// No keep-alive: a connection the client dials but never uses would
	// hold Shutdown for 5 s (net/http counts a new connection as active
	// until then).
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	defer probe.CloseIdleConnections()

	var lbOut atomic.Bool // the "load balancer" saw readiness fail
	type outcome struct {
		sent time.Time
		code int
		err  error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
	)
	get := func(url string) {
		sent := time.Now()
		resp, err := client.Get(url)
		o := outcome{sent: sent, err: err}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.code = resp.StatusCode
			if string(body) != "done" {
				o.err = errors.New("body " + string(body))
			}
		}
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Second)
	for range 4 { // bounded: 4 workers × at most 300 requests, 10 s
		wg.Go(func() {
			for i := 0; i < 300 && !lbOut.Load() && time.Now().Before(deadline); i++ {
				get(base + "/work")
			}
		})
	}
	// The prober: fresh connections, like a kubelet.
	type sample struct {
		sent, at time.Time
		code     int
		refuse   bool
	}
	var samples []sample
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
			sent := time.Now()
			resp, err := probe.Get(base + "/readyz")
			s := sample{sent: sent, at: time.Now(), refuse: err != nil}
			if err == nil {
				s.code = resp.StatusCode
				resp.Body.Close()
				if s.code == 503 {
					lbOut.Store(true)
				}
			}
			samples = append(samples, s)
			if s.refuse {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(50 * time.Millisecond) // some load before the signal
	wg.Go(func() { get(base + "/work?slow") })
	<-slowStarted
	drainStart := time.Now()
	graceful, err := c.Drain(context.Background(), srv)
	drained := time.Now()
	wg.Wait()
	<-probeDone
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		t.Errorf("Serve() = %v, want ErrServerClosed", serr)
	}
	if !graceful || err != nil {
		t.Errorf("Drain() = %v, %v; want graceful", graceful, err)
	}
	if len(outcomes) < 10 {
		t.Errorf("only %d requests under load", len(outcomes))
	}
	for _, o := range outcomes {
		// The workers stop within milliseconds of the flip; one sent late
		// by a stalled machine, when the listener may be closing, proves
		// nothing either way.
		if (o.err != nil || o.code != 200) && o.sent.Before(drainStart.Add(delay/2)) {
			t.Errorf("a request sent %v into the drain: %d %v; want 200", o.sent.Sub(drainStart), o.code, o.err)
		}
	}
	var sawFail bool
	for _, s := range samples {
		switch {
		case s.at.Before(drainStart):
			if s.code != 200 {
				t.Errorf("readyz before the drain = %d (refused %v), want 200", s.code, s.refuse)
			}
		case s.refuse:
			if s.at.Sub(drainStart) < delay {
				t.Errorf("listener closed %v into the drain, want after the %v delay", s.at.Sub(drainStart), delay)
			}
		case s.code == 503:
			sawFail = true
		case s.sent.After(drainStart): // a probe in flight at the flip may pass
			t.Errorf("readyz sent %v into the drain = %d, want 503", s.sent.Sub(drainStart), s.code)
		}
	}
	if !sawFail {
		t.Error("no 503 from readyz during the delay")
	}
	t.Logf("%d requests under load, %d readiness samples", len(outcomes), len(samples))
	if drained.Sub(drainStart) < delay {
		t.Errorf("Drain returned after %v, before its delay", drained.Sub(drainStart))
	}
}

// TestHealthDrainForced: work that outlives the drain timeout is cut off
// by the forced Close, and Drain says it was not graceful.
func TestHealthDrainForced(t *testing.T) {
	c := health.New(health.WithDrainDelay(0), health.WithDrainTimeout(100*time.Millisecond))
	defer c.Close()
	release := make(chan struct{})
	handlerDone := make(chan struct{})
	started := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		select { // bounded: the test releases it
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})}
	base, served := healthLoopback(t, srv)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	graceful, derr := c.Drain(context.Background(), srv)
	_, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(release)
	<-handlerDone
	<-served
	if graceful || derr != nil {
		t.Errorf("Drain() = %v, %v; want not graceful, nil", graceful, derr)
	}
	if rerr == nil {
		t.Error("the cut-off response body read to its end, want an error: the connection was closed")
	}
}
