package bulwarkhttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// serve starts a loopback server for h and returns a client for it.
func serve(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

func get(t *testing.T, c *http.Client, url string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, b
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "served")
})

func TestMiddlewareRefusalMapping(t *testing.T) {
	other := errors.New("test: something else")
	tests := []struct {
		name       string
		give       error
		wantStatus int
		wantDetail string
	}{
		{"ErrRejected", &refusal{class: bulwark.ErrRejected}, http.StatusTooManyRequests, "test: refused: bulwark: rejected"},
		{"ErrUnavailable", &refusal{class: bulwark.ErrUnavailable}, http.StatusServiceUnavailable, "test: refused: bulwark: unavailable"},
		{"ErrRemoteRejected", fmt.Errorf("call: %w", bulwark.ErrRemoteRejected), http.StatusServiceUnavailable, "a service this request depends on is unavailable"},
		{"ErrRemoteUnavailable", fmt.Errorf("call: %w", bulwark.ErrRemoteUnavailable), http.StatusServiceUnavailable, "a service this request depends on is unavailable"},
		{"ErrTimeout", bulwark.ErrTimeout, http.StatusServiceUnavailable, "the request timed out"},
		{"other", other, http.StatusInternalServerError, "the request could not be served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }), policytest.Refuse(tt.give))
			srv, c := serve(t, h)
			resp, b := get(t, c, srv.URL, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ran {
				t.Error("the handler ran for a refused request")
			}
			if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", got)
			}
			if got := resp.Header.Get("Retry-After"); got != "" {
				t.Errorf("Retry-After = %q without a hint, want none", got)
			}
			var p problemBody
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("body %q is not JSON: %v", b, err)
			}
			want := problemBody{Type: "about:blank", Title: http.StatusText(tt.wantStatus), Status: tt.wantStatus, Detail: tt.wantDetail}
			if p != want {
				t.Errorf("problem = %+v, want %+v", p, want)
			}
			if got := bulwarkhttp.StatusCode(tt.give); got != tt.wantStatus {
				t.Errorf("StatusCode() = %d, want %d", got, tt.wantStatus)
			}
		})
	}
}

func TestMiddlewareRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		give time.Duration
		want string
	}{
		{"no hint", 0, ""},
		{"negative", -time.Second, ""},
		{"1ns", time.Nanosecond, "1"},
		{"999ms", 999 * time.Millisecond, "1"},
		{"1s", time.Second, "1"},
		{"1001ms", 1001 * time.Millisecond, "2"},
		{"2.5s", 2500 * time.Millisecond, "3"},
		{"90s", 90 * time.Second, "90"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bulwarkhttp.Handler(okHandler, policytest.Refuse(&refusal{class: bulwark.ErrUnavailable, hint: tt.give}))
			srv, c := serve(t, h)
			resp, _ := get(t, c, srv.URL, nil)
			if got := resp.Header.Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
			if _, present := resp.Header["Retry-After"]; present != (tt.want != "") {
				t.Errorf("Retry-After present = %v, want %v", present, tt.want != "")
			}
		})
	}
}

func TestMiddlewareRateLimitHeaders(t *testing.T) {
	q := bulwark.Quota{Name: `api "v1"`, Limit: 100, Window: 60 * time.Second, Remaining: 0, Reset: 2500 * time.Millisecond}
	t.Run("refusal", func(t *testing.T) {
		err := &quotaRefusal{refusal: refusal{class: bulwark.ErrRejected, hint: 1200 * time.Millisecond}, q: q}
		srv, c := serve(t, bulwarkhttp.Handler(okHandler, policytest.Refuse(err)))
		resp, _ := get(t, c, srv.URL, nil)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("status = %d, want 429", resp.StatusCode)
		}
		for _, tt := range []struct{ name, want string }{
			{"RateLimit-Policy", `"api \"v1\"";q=100;w=60`},
			{"RateLimit", `"api \"v1\"";r=0;t=3`},
			{"Retry-After", "3"}, // >= t when both are present
		} {
			if got := resp.Header.Get(tt.name); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
			}
		}
	})
	t.Run("Retry-After is t rounded up", func(t *testing.T) {
		// The hint was read at another moment than the quota: the headers
		// follow the quota, so Retry-After and t agree.
		err := &quotaRefusal{refusal: refusal{class: bulwark.ErrUnavailable, hint: 4 * time.Second}, q: q}
		srv, c := serve(t, bulwarkhttp.Handler(okHandler, policytest.Refuse(err)))
		resp, _ := get(t, c, srv.URL, nil)
		if got := resp.Header.Get("Retry-After"); got != "3" {
			t.Errorf("Retry-After = %q, want %q (t = 2.5s rounded up)", got, "3")
		}
	})
	t.Run("admitted", func(t *testing.T) {
		admitted := q
		admitted.Remaining, admitted.Reset = 41, 0
		limiter := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
			if rec := bulwark.CallInfoFrom(ctx).Quota; rec != nil {
				rec.Record(admitted)
			}
			return fn(ctx)
		})
		srv, c := serve(t, bulwarkhttp.Handler(okHandler, limiter, bulwarkhttp.WithRateLimitHeaders(true)))
		resp, b := get(t, c, srv.URL, nil)
		if resp.StatusCode != http.StatusOK || string(b) != "served" {
			t.Fatalf("got %d %q, want 200 \"served\"", resp.StatusCode, b)
		}
		if got, want := resp.Header.Get("RateLimit"), `"api \"v1\"";r=41;t=0`; got != want {
			t.Errorf("RateLimit = %q, want %q", got, want)
		}
		if got, want := resp.Header.Get("RateLimit-Policy"), `"api \"v1\"";q=100;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		var sawRecorder bool
		p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
			sawRecorder = bulwark.CallInfoFrom(ctx).Quota != nil
			return fn(ctx)
		})
		srv, c := serve(t, bulwarkhttp.Handler(okHandler, p))
		resp, _ := get(t, c, srv.URL, nil)
		if sawRecorder {
			t.Error("the context carried a QuotaRecorder without WithRateLimitHeaders")
		}
		if got := resp.Header.Get("RateLimit"); got != "" {
			t.Errorf("RateLimit = %q, want none", got)
		}
	})
}

func TestMiddlewareFailureClassification(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		opts       []bulwarkhttp.Option
		wantFailed bool
	}{
		{"200", http.StatusOK, nil, false},
		{"implicit 200", 0, nil, false},
		{"404", http.StatusNotFound, nil, false},
		{"499", 499, nil, false},
		{"500", http.StatusInternalServerError, nil, true},
		{"503", http.StatusServiceUnavailable, nil, true},
		{"599", 599, nil, true},
		{"custom: 429 fails", http.StatusTooManyRequests, []bulwarkhttp.Option{bulwarkhttp.WithFailureStatus(func(s int) bool { return s == 429 })}, true},
		{"custom: 500 does not", http.StatusInternalServerError, []bulwarkhttp.Option{bulwarkhttp.WithFailureStatus(func(s int) bool { return s == 429 })}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &policytest.Recorder{}
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Handler", "yes")
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = io.WriteString(w, "handler body")
			}), rec, tt.opts...)
			srv, c := serve(t, h)
			resp, b := get(t, c, srv.URL, nil)
			wantStatus := tt.status
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if resp.StatusCode != wantStatus || string(b) != "handler body" || resp.Header.Get("X-Handler") != "yes" {
				t.Errorf("response = %d %q, want the handler's %d %q unchanged", resp.StatusCode, b, wantStatus, "handler body")
			}
			err := rec.Last()
			if (err != nil) != tt.wantFailed {
				t.Fatalf("policy saw %v, want failure %v", err, tt.wantFailed)
			}
			if err != nil {
				if bulwark.IsRefusal(err) || errors.Is(err, bulwark.ErrRemoteUnavailable) || errors.Is(err, bulwark.ErrRemoteRejected) {
					t.Errorf("failure %v carries a class, want an unclassified failure", err)
				}
				if !strings.Contains(err.Error(), fmt.Sprint(wantStatus)) {
					t.Errorf("failure %q does not name status %d", err, wantStatus)
				}
			}
		})
	}
}

// flagPolicy records whether fn returned normally, flag-based.
type flagPolicy struct {
	mu       sync.Mutex
	calls    int
	returned int
}

func (p *flagPolicy) Do(ctx context.Context, fn func(context.Context) error) error {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	err := fn(ctx)
	p.mu.Lock()
	p.returned++
	p.mu.Unlock()
	return err
}

func TestMiddlewarePanicPassesThrough(t *testing.T) {
	type marker struct{}
	want := &marker{}
	p := &flagPolicy{}
	h := bulwarkhttp.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(want) }), p)
	got := func() (v any) {
		defer func() { v = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		return nil
	}()
	if got != want {
		t.Fatalf("recovered %v, want the handler's panic value", got)
	}
	if p.calls != 1 || p.returned != 0 {
		t.Errorf("fn calls = %d, normal returns = %d, want 1 and 0", p.calls, p.returned)
	}
	// On a real server net/http's recovery applies: the connection is
	// dropped, and the server keeps serving.
	hs := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler) // net/http recovers it silently
		}
		_, _ = io.WriteString(w, "ok")
	}), &flagPolicy{})
	srv, c := serve(t, hs)
	if resp, err := c.Get(srv.URL + "/panic"); err == nil {
		resp.Body.Close()
		t.Error("GET /panic succeeded, want the connection aborted by net/http's recovery")
	}
	if resp, b := get(t, c, srv.URL+"/", nil); resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("after the panic: %d %q, want 200 ok", resp.StatusCode, b)
	}
}

func TestMiddlewareGoexitPassesThrough(t *testing.T) {
	p := &flagPolicy{}
	var observed bool
	h := bulwarkhttp.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { runtime.Goexit() }), p,
		bulwarkhttp.WithObserver(func(*http.Request, bulwarkhttp.Result) { observed = true }))
	var returned bool
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		returned = true
	}()
	<-ended
	if returned || observed {
		t.Errorf("ServeHTTP returned = %v, observer called = %v after runtime.Goexit, want neither", returned, observed)
	}
	if p.calls != 1 || p.returned != 0 {
		t.Errorf("fn calls = %d, normal returns = %d, want 1 and 0", p.calls, p.returned)
	}
	// The middleware stays usable.
	rr := httptest.NewRecorder()
	bulwarkhttp.Handler(okHandler, p).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/", nil))
	if rr.Code != 200 || rr.Body.String() != "served" {
		t.Errorf("afterwards: %d %q, want 200 served", rr.Code, rr.Body)
	}
}

func TestMiddlewareHijack(t *testing.T) {
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "wrapper lost http.Hijacker", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = rw.WriteString("echo: " + line)
		_ = rw.Flush()
	}), &policytest.Recorder{})
	srv, c := serve(t, h)
	for _, tt := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"plain client", c.Transport},
		{"through Transport with a timeout", bulwarkhttp.Transport(bulwark.Timeout(time.Minute), c.Transport)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "echo")
			resp, err := (&http.Client{Transport: tt.rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d %q, want 101", resp.StatusCode, b)
			}
			rwc, ok := resp.Body.(io.ReadWriteCloser)
			if !ok {
				t.Fatalf("101 body %T is not an io.ReadWriteCloser", resp.Body)
			}
			if _, err := io.WriteString(rwc, "ping\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(rwc).ReadString('\n')
			if err != nil || line != "echo: ping\n" {
				t.Errorf("read %q, %v, want %q", line, err, "echo: ping\n")
			}
		})
	}
}

func TestMiddlewareFlushAndUnwrap(t *testing.T) {
	release := make(chan struct{})
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
			http.Error(w, "no Unwrap", http.StatusInternalServerError)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			http.Error(w, "SetWriteDeadline: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
		if err := rc.Flush(); err != nil {
			return
		}
	}), &policytest.Recorder{})
	srv, c := serve(t, h)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first line arrives while the handler still waits: it was
	// flushed through the wrapper.
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		close(release)
		t.Fatalf("first read %q, %v, want %q (status %d)", line, err, "first\n", resp.StatusCode)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Errorf("rest = %q, want %q", rest, "second\n")
	}
}

func TestMiddlewarePriority(t *testing.T) {
	trusted := bulwarkhttp.WithTrustPriority(func(r *http.Request) bool { return r.Header.Get("X-Peer") == "trusted" })
	tests := []struct {
		name string
		give http.Header
		opts []bulwarkhttp.Option
		want bulwark.Priority
	}{
		{"no header", nil, nil, bulwark.Critical},
		{"sheddable", http.Header{"Bulwark-Priority": {"sheddable"}}, nil, bulwark.Sheddable},
		{"SHEDDABLE_PLUS", http.Header{"Bulwark-Priority": {"SHEDDABLE_PLUS"}}, nil, bulwark.SheddablePlus},
		{"critical", http.Header{"Bulwark-Priority": {"critical"}}, nil, bulwark.Critical},
		{"untrusted critical-plus", http.Header{"Bulwark-Priority": {"critical-plus"}}, nil, bulwark.Critical},
		{"untrusted peer with a trust rule", http.Header{"Bulwark-Priority": {"critical-plus"}}, []bulwarkhttp.Option{trusted}, bulwark.Critical},
		{"trusted critical-plus", http.Header{"Bulwark-Priority": {"critical-plus"}, "X-Peer": {"trusted"}}, []bulwarkhttp.Option{trusted}, bulwark.CriticalPlus},
		{"unparseable", http.Header{"Bulwark-Priority": {"urgent!!"}}, nil, bulwark.Critical},
		{"empty", http.Header{"Bulwark-Priority": {""}}, nil, bulwark.Critical},
		{"priority func", http.Header{"Bulwark-Priority": {"sheddable"}},
			[]bulwarkhttp.Option{bulwarkhttp.WithPriorityFunc(func(*http.Request) bulwark.Priority { return bulwark.CriticalPlus })}, bulwark.CriticalPlus},
		{"priority func out of range", nil,
			[]bulwarkhttp.Option{bulwarkhttp.WithPriorityFunc(func(*http.Request) bulwark.Priority { return 42 })}, bulwark.Critical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var policySaw, handlerSaw bulwark.Priority = 99, 99
			p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
				policySaw = bulwark.PriorityFrom(ctx)
				return fn(ctx)
			})
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerSaw = bulwark.PriorityFrom(r.Context())
			}), p, tt.opts...)
			srv, c := serve(t, h)
			resp, _ := get(t, c, srv.URL, tt.give)
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d, want 200 (an unparseable header is never an error)", resp.StatusCode)
			}
			if policySaw != tt.want || handlerSaw != tt.want {
				t.Errorf("policy saw %v, handler saw %v, want %v", policySaw, handlerSaw, tt.want)
			}
		})
	}
}

func TestMiddlewareKeyAndContext(t *testing.T) {
	type ctxKey struct{}
	tests := []struct {
		name        string
		give        http.Header
		opts        []bulwarkhttp.Option
		wantKey     string
		wantSameCtx bool
	}{
		{"nothing changes", nil, nil, "", true},
		{"critical header changes nothing", http.Header{"Bulwark-Priority": {"critical"}}, nil, "", true},
		{"sheddable", http.Header{"Bulwark-Priority": {"sheddable"}}, nil, "", false},
		{"key", nil, []bulwarkhttp.Option{bulwarkhttp.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") })}, "", true},
		{"key set", http.Header{"X-Tenant": {"acme"}}, []bulwarkhttp.Option{bulwarkhttp.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") })}, "acme", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var outer, inner context.Context
			var key string
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner = r.Context()
				key = bulwark.KeyFrom(r.Context())
			}), policytest.PassThrough, tt.opts...)
			wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "outer"))
				outer = r.Context()
				h.ServeHTTP(w, r)
			})
			srv, c := serve(t, wrapped)
			get(t, c, srv.URL, tt.give)
			if key != tt.wantKey {
				t.Errorf("key = %q, want %q", key, tt.wantKey)
			}
			if (inner == outer) != tt.wantSameCtx {
				t.Errorf("handler got the request's own context: %v, want %v", inner == outer, tt.wantSameCtx)
			}
			if inner.Value(ctxKey{}) != "outer" {
				t.Error("the handler's context lost the request's values")
			}
		})
	}
}

func TestMiddlewareClientGone(t *testing.T) {
	t.Run("before the handler", func(t *testing.T) {
		results := make(chan bulwarkhttp.Result, 1)
		arrived := make(chan struct{})
		var wrote bool
		p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
			close(arrived)
			<-ctx.Done() // a queue the client gave up waiting in
			return &refusal{class: bulwark.ErrUnavailable, hint: time.Second}
		})
		h := bulwarkhttp.Handler(okHandler, p,
			bulwarkhttp.WithRejectHandler(func(w http.ResponseWriter, r *http.Request, err error) { wrote = true }),
			bulwarkhttp.WithObserver(func(r *http.Request, res bulwarkhttp.Result) { results <- res }))
		srv, c := serve(t, h)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		go func() { <-arrived; cancel() }()
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("request succeeded, want it cancelled")
		}
		res := <-results
		if res.Status != bulwarkhttp.StatusClientClosedRequest || res.Outcome != "ignored" || res.HandlerRan {
			t.Errorf("result = %+v, want status 499, outcome ignored, handler not run", res)
		}
		if wrote {
			t.Error("a response was written for a client that went away")
		}
	})
	t.Run("during the handler", func(t *testing.T) {
		results := make(chan bulwarkhttp.Result, 1)
		rec := &policytest.Recorder{}
		arrived := make(chan struct{})
		h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
			w.WriteHeader(http.StatusServiceUnavailable)
		}), rec, bulwarkhttp.WithObserver(func(r *http.Request, res bulwarkhttp.Result) { results <- res }))
		srv, c := serve(t, h)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		go func() { <-arrived; cancel() }()
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
		res := <-results
		if res.Outcome != "ignored" || !res.HandlerRan {
			t.Errorf("result = %+v, want outcome ignored after the handler ran", res)
		}
		if err := rec.Last(); !errors.Is(err, context.Canceled) {
			t.Errorf("policy saw %v, want the caller's context.Canceled (ignored, not a failure)", err)
		}
	})
}

func TestMiddlewareRefusalAfterHandler(t *testing.T) {
	results := make(chan bulwarkhttp.Result, 1)
	p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		_ = fn(ctx)
		return &refusal{class: bulwark.ErrUnavailable, hint: time.Second}
	})
	h := bulwarkhttp.Handler(okHandler, p, bulwarkhttp.WithObserver(func(r *http.Request, res bulwarkhttp.Result) { results <- res }))
	srv, c := serve(t, h)
	resp, b := get(t, c, srv.URL, nil)
	if resp.StatusCode != 200 || string(b) != "served" || resp.Header.Get("Retry-After") != "" {
		t.Errorf("response = %d %q (Retry-After %q), want the handler's 200 \"served\" untouched",
			resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	res := <-results
	if res.Outcome != "refused" || !res.HandlerRan || res.Status != 200 || !errors.Is(res.Err, bulwark.ErrUnavailable) {
		t.Errorf("result = %+v, want the refusal recorded with the handler's status", res)
	}
}

func TestMiddlewareServesOnce(t *testing.T) {
	calls := 0
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusBadGateway)
	}), &retrier{n: 3, force: true})
	srv, c := serve(t, h)
	resp, _ := get(t, c, srv.URL, nil)
	if calls != 1 || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("handler ran %d times, status %d; want once, 502", calls, resp.StatusCode)
	}
}

func TestMiddlewareExemptAndRejectHandler(t *testing.T) {
	h := bulwarkhttp.Handler(okHandler, policytest.Refuse(&refusal{class: bulwark.ErrUnavailable}),
		bulwarkhttp.WithExempt(func(r *http.Request) bool { return r.URL.Path == "/stream" }),
		bulwarkhttp.WithRejectHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("X-Rejected", "custom")
			bulwarkhttp.WriteError(w, err)
		}))
	srv, c := serve(t, h)
	tests := []struct {
		name, path string
		wantStatus int
		wantHeader string
	}{
		{"exempt", "/stream", 200, ""},
		{"refused", "/api", 503, "custom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, c, srv.URL+tt.path, nil)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Rejected") != tt.wantHeader {
				t.Errorf("got %d, X-Rejected %q; want %d, %q", resp.StatusCode, resp.Header.Get("X-Rejected"), tt.wantStatus, tt.wantHeader)
			}
		})
	}
}

func TestMiddlewareTimeoutReachesHandler(t *testing.T) {
	var deadline bool
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, deadline = r.Context().Deadline()
	}), bulwark.Timeout(time.Minute))
	srv, c := serve(t, h)
	get(t, c, srv.URL, nil)
	if !deadline {
		t.Error("the handler's context has no deadline under a Timeout policy")
	}
}

func TestMiddlewareNilArguments(t *testing.T) {
	tests := []struct {
		name string
		give func()
	}{
		{"Middleware nil policy", func() { bulwarkhttp.Middleware(nil) }},
		{"Middleware nil handler", func() { bulwarkhttp.Middleware(policytest.PassThrough)(nil) }},
		{"Handler nil handler", func() { bulwarkhttp.Handler(nil, policytest.PassThrough) }},
		{"Handler nil policy", func() { bulwarkhttp.Handler(okHandler, nil) }},
		{"Transport nil policy", func() { bulwarkhttp.Transport(nil, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if s, _ := v.(string); !strings.HasPrefix(s, "bulwarkhttp: ") {
					t.Errorf("panic %v, want one naming the package", v)
				}
			}()
			tt.give()
		})
	}
}

// hedger calls fn twice at once, as a hedging policy may.
type hedger struct{}

func (hedger) ConcurrentFn() bool { return true }

func (hedger) Do(ctx context.Context, fn func(context.Context) error) error {
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- fn(ctx) }()
	}
	e1, e2 := <-errs, <-errs
	if e1 == nil || e2 == nil {
		return nil
	}
	return e1
}

func TestMiddlewareConcurrentPolicyServesOnce(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		_, _ = io.WriteString(w, "once")
	}), hedger{})
	srv, c := serve(t, h)
	for range 5 {
		if resp, b := get(t, c, srv.URL, nil); resp.StatusCode != 200 || string(b) != "once" {
			t.Fatalf("got %d %q, want 200 \"once\"", resp.StatusCode, b)
		}
	}
	if calls != 5 {
		t.Errorf("handler ran %d times for 5 requests, want 5", calls)
	}
}

func TestMiddlewareQuotaRecorderIsPerRequest(t *testing.T) {
	// A request's context may outlive it (a background job keeps it): a
	// rate limit admitting work under that context later must not reach
	// another request's RateLimit headers.
	var kept context.Context
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = r.Context()
	}), policytest.PassThrough, bulwarkhttp.WithRateLimitHeaders(true))
	stale := bulwark.Quota{Name: "stale", Limit: 1, Remaining: 0}
	for i := range 20 {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := rr.Header().Get("RateLimit"); got != "" {
			t.Fatalf("request %d: RateLimit = %q, want none (another request's quota leaked)", i+1, got)
		}
		rec := bulwark.CallInfoFrom(kept).Quota
		if rec == nil {
			t.Fatal("no QuotaRecorder in the handler's context")
		}
		rec.Record(stale)
	}
}

func TestWriteErrorDetailDoesNotLeak(t *testing.T) {
	// The detail of a downstream's failure or of a timeout names internal
	// hosts and errors: it must not reach the client. Local refusals keep
	// their own (fixed) messages.
	secret := "dial tcp 10.1.2.3:5432: connect: connection refused"
	tests := []struct {
		name       string
		give       error
		wantStatus int
		wantDetail string
	}{
		{"ErrRemoteUnavailable", fmt.Errorf("%s: %w", secret, bulwark.ErrRemoteUnavailable), 503, "a service this request depends on is unavailable"},
		{"ErrRemoteRejected", fmt.Errorf("%s: %w", secret, bulwark.ErrRemoteRejected), 503, "a service this request depends on is unavailable"},
		{"ErrTimeout", fmt.Errorf("%s: %w", secret, bulwark.ErrTimeout), 503, "the request timed out"},
		{"other", errors.New(secret), 500, "the request could not be served"},
		{"local refusal", &refusal{class: bulwark.ErrRejected}, 429, "test: refused: bulwark: rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := httptest.NewRecorder()
			bulwarkhttp.WriteError(rr, tt.give)
			var p problemBody
			if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", rr.Body, err)
			}
			if rr.Code != tt.wantStatus || p.Status != tt.wantStatus || p.Detail != tt.wantDetail {
				t.Errorf("got %d %+v, want %d with detail %q", rr.Code, p, tt.wantStatus, tt.wantDetail)
			}
			if strings.Contains(rr.Body.String(), "10.1.2.3") {
				t.Errorf("body %q leaks the internal error", rr.Body)
			}
		})
	}
}

func TestMiddlewareHeadRefusalHasNoBody(t *testing.T) {
	h := bulwarkhttp.Handler(okHandler, policytest.Refuse(&refusal{class: bulwark.ErrUnavailable}))
	getRec := httptest.NewRecorder()
	h.ServeHTTP(getRec, httptest.NewRequest(http.MethodGet, "/", nil))
	headRec := httptest.NewRecorder()
	h.ServeHTTP(headRec, httptest.NewRequest(http.MethodHead, "/", nil))
	if headRec.Code != 503 || headRec.Body.Len() != 0 {
		t.Errorf("HEAD: %d with a %d-byte body, want 503 and no body", headRec.Code, headRec.Body.Len())
	}
	if got, want := headRec.Header().Get("Content-Type"), getRec.Header().Get("Content-Type"); got != want {
		t.Errorf("HEAD Content-Type = %q, want GET's %q", got, want)
	}
	if got, want := headRec.Header().Get("Content-Length"), strconv.Itoa(getRec.Body.Len()); got != want {
		t.Errorf("HEAD Content-Length = %q, want the GET body's %q", got, want)
	}
	// On the wire, HEAD gets the headers GET gets.
	srv, c := serve(t, h)
	gresp, _ := get(t, c, srv.URL, nil)
	hresp, err := c.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != 503 || hresp.Header.Get("Content-Type") != "application/problem+json" ||
		hresp.ContentLength != gresp.ContentLength {
		t.Errorf("HEAD over the wire: %d %q length %d, want 503 application/problem+json length %d",
			hresp.StatusCode, hresp.Header.Get("Content-Type"), hresp.ContentLength, gresp.ContentLength)
	}
}

// abandoner calls fn on a goroutine and returns as soon as it started,
// as a hedging policy may when it gives up on an attempt.
type abandoner struct{ started chan struct{} }

func (abandoner) ConcurrentFn() bool { return true }

func (a abandoner) Do(ctx context.Context, fn func(context.Context) error) error {
	go func() { _ = fn(ctx) }()
	<-a.started
	return &refusal{class: bulwark.ErrUnavailable}
}

func TestMiddlewareWaitsForAbandonedHandler(t *testing.T) {
	// net/http forbids using a ResponseWriter after ServeHTTP returned: a
	// policy that returns while the handler still runs must not let
	// ServeHTTP return before the handler did.
	synctest.Test(t, func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		var res bulwarkhttp.Result
		h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-release
			w.WriteHeader(http.StatusAccepted)
		}), abandoner{started: started}, bulwarkhttp.WithObserver(func(_ *http.Request, r bulwarkhttp.Result) { res = r }))
		rr := httptest.NewRecorder()
		var returned atomic.Bool
		go func() {
			h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/", nil))
			returned.Store(true)
		}()
		synctest.Wait()
		if returned.Load() {
			t.Error("ServeHTTP returned while the handler was still running")
		}
		close(release)
		synctest.Wait()
		if !returned.Load() {
			t.Fatal("ServeHTTP did not return after the handler did")
		}
		if rr.Code != http.StatusAccepted || !res.HandlerRan || res.Status != http.StatusAccepted || res.Outcome != "refused" {
			t.Errorf("response %d, result %+v; want the handler's 202 and the refusal recorded", rr.Code, res)
		}
	})
}

func TestWriteErrorHugeHintDoesNotOverflow(t *testing.T) {
	const huge = time.Duration(math.MaxInt64) // 9223372036.854775807s
	err := &quotaRefusal{
		refusal: refusal{class: bulwark.ErrRejected, hint: huge},
		q:       bulwark.Quota{Name: "q", Limit: 1, Window: huge, Reset: huge},
	}
	rr := httptest.NewRecorder()
	bulwarkhttp.WriteError(rr, err)
	for _, tt := range []struct{ name, want string }{
		{"Retry-After", "9223372037"},
		{"RateLimit", `"q";r=0;t=9223372037`},
		{"RateLimit-Policy", `"q";q=1;w=9223372037`},
	} {
		if got := rr.Header().Get(tt.name); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMiddlewareKeepsReaderFrom(t *testing.T) {
	rec := &policytest.Recorder{}
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rf, ok := w.(io.ReaderFrom)
		if !ok {
			http.Error(w, "wrapper lost io.ReaderFrom", http.StatusInternalServerError)
			return
		}
		_, _ = rf.ReadFrom(strings.NewReader("copied"))
	}), rec)
	srv, c := serve(t, h)
	resp, b := get(t, c, srv.URL, nil)
	if resp.StatusCode != 200 || string(b) != "copied" {
		t.Errorf("got %d %q, want 200 \"copied\" through ReadFrom", resp.StatusCode, b)
	}
	if err := rec.Last(); err != nil {
		t.Errorf("policy saw %v, want success", err)
	}
}
