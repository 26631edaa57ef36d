package bulwarkhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

// idemServer serves h behind the idempotency middleware on loopback and
// counts the handler's runs.
type idemServer struct {
	srv  *httptest.Server
	c    *http.Client
	runs atomic.Int64
}

func newIdemServer(t *testing.T, store idempotency.Store, h http.HandlerFunc, opts ...idempotency.Option) *idemServer {
	t.Helper()
	s := &idemServer{}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.runs.Add(1)
		h(w, r)
	})
	s.srv = newIdemLoopback(t, bulwarkhttp.Idempotency(store, opts...)(counted))
	s.c = s.srv.Client()
	return s
}

// newIdemLoopback serves h on 127.0.0.1, without logging the handler
// panics tests provoke.
func newIdemLoopback(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

type idemReq struct {
	method, path, key, auth, body string
	header                        http.Header
}

type idemResp struct {
	status int
	header http.Header
	body   string
}

func (s *idemServer) do(t *testing.T, q idemReq) idemResp {
	t.Helper()
	r, err := s.send(context.Background(), q)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	return r
}

func (s *idemServer) send(ctx context.Context, q idemReq) (idemResp, error) {
	if q.method == "" {
		q.method = http.MethodPost
	}
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(ctx, q.method, s.srv.URL+q.path, body)
	if err != nil {
		return idemResp{}, err
	}
	if q.key != "" {
		req.Header.Set("Idempotency-Key", q.key)
	}
	if q.auth != "" {
		req.Header.Set("Authorization", q.auth)
	}
	for k, v := range q.header {
		req.Header[k] = v
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return idemResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return idemResp{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// created answers 201 with a body that changes on every run, so a replay
// is told from a second execution.
func idemCreated() http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/orders/1")
		w.Header().Set("X-Not-Stored", "1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"run":%d,"got":%q}`, n.Add(1), b)
	}
}

func wantIdemProblem(t *testing.T, r idemResp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Status != status || p.Detail == "" {
		t.Fatalf("problem body %q: %v; want status %d and a detail", r.body, err, status)
	}
}

func TestIdempotencyReplay(t *testing.T) {
	s := newIdemServer(t, idempotency.NewMemoryStore(), idemCreated())
	first := s.do(t, idemReq{path: "/orders", key: `"k1"`, body: "pay 10"})
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first = %d %v, want 201 without the replay marker", first.status, first.header)
	}
	for _, key := range []string{`"k1"`, "k1", ` "k1";p=1 `} {
		again := s.do(t, idemReq{path: "/orders", key: key, body: "pay 10"})
		if again.status != first.status || again.body != first.body {
			t.Fatalf("replay with %s = %d %q, want %d %q", key, again.status, again.body, first.status, first.body)
		}
		for _, h := range []string{"Content-Type", "Location"} {
			if again.header.Get(h) != first.header.Get(h) {
				t.Errorf("replayed %s = %q, want %q", h, again.header.Get(h), first.header.Get(h))
			}
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("Idempotent-Replayed = %q, want true", again.header.Get("Idempotent-Replayed"))
		}
		if again.header.Get("X-Not-Stored") != "" {
			t.Errorf("X-Not-Stored replayed; only the headers describing the body are")
		}
	}
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestIdempotencyRules(t *testing.T) {
	type step struct {
		req        idemReq
		wantStatus int
		wantRuns   int64 // handler runs so far
		problem    bool
		replayed   bool
	}
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, "answer")
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    []idempotency.Option
		steps   []step
	}{
		{name: "no key passes through", handler: idemCreated(), steps: []step{
			{req: idemReq{body: "a"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{body: "a"}, wantStatus: 201, wantRuns: 2},
		}},
		{name: "key required", handler: idemCreated(), opts: []idempotency.Option{idempotency.WithKeyRequired(true)}, steps: []step{
			{req: idemReq{body: "a"}, wantStatus: 400, problem: true},
			{req: idemReq{method: "GET"}, wantStatus: 201, wantRuns: 1}, // GET is not covered
		}},
		{name: "GET with a key passes through", handler: idemCreated(), steps: []step{
			{req: idemReq{method: "GET", key: "k"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{method: "GET", key: "k"}, wantStatus: 201, wantRuns: 2},
		}},
		{name: "PATCH covered, PUT with WithMethods", handler: idemCreated(), opts: []idempotency.Option{idempotency.WithMethods("PUT")}, steps: []step{
			{req: idemReq{method: "PATCH", key: "k"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{method: "PATCH", key: "k"}, wantStatus: 201, wantRuns: 2},
			{req: idemReq{method: "PUT", key: "k"}, wantStatus: 201, wantRuns: 3},
			{req: idemReq{method: "PUT", key: "k"}, wantStatus: 201, wantRuns: 3, replayed: true},
		}},
		{name: "empty key", handler: idemCreated(), steps: []step{{req: idemReq{key: `""`}, wantStatus: 400, problem: true}}},
		{name: "malformed key", handler: idemCreated(), steps: []step{{req: idemReq{key: `"abc`}, wantStatus: 400, problem: true}}},
		{name: "key with a space", handler: idemCreated(), steps: []step{{req: idemReq{key: `a b`}, wantStatus: 400, problem: true}}},
		{name: "256-character key", handler: idemCreated(), steps: []step{{req: idemReq{key: strings.Repeat("k", 256)}, wantStatus: 400, problem: true}}},
		{name: "key list", handler: idemCreated(), steps: []step{{req: idemReq{key: `"a", "b"`}, wantStatus: 400, problem: true}}},
		{name: "two key fields", handler: idemCreated(), steps: []step{
			{req: idemReq{header: http.Header{"Idempotency-Key": {"a", "b"}}}, wantStatus: 400, problem: true},
		}},
		{name: "other body is 422", handler: idemCreated(), steps: []step{
			{req: idemReq{key: "k", body: "a"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{key: "k", body: "b"}, wantStatus: 422, wantRuns: 1, problem: true},
		}},
		{name: "other path is 422", handler: idemCreated(), steps: []step{
			{req: idemReq{key: "k", path: "/a"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{key: "k", path: "/b"}, wantStatus: 422, wantRuns: 1, problem: true},
			{req: idemReq{key: "k", path: "/a?x=1"}, wantStatus: 422, wantRuns: 1, problem: true},
		}},
		{name: "fingerprint off replays another body", handler: idemCreated(), opts: []idempotency.Option{idempotency.WithFingerprint(false)}, steps: []step{
			{req: idemReq{key: "k", body: "a"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{key: "k", body: "b"}, wantStatus: 201, wantRuns: 1, replayed: true},
		}},
		{name: "body over the limit is 413", handler: idemCreated(), opts: []idempotency.Option{idempotency.WithMaxRequestBytes(4)}, steps: []step{
			{req: idemReq{key: "k", body: "12345"}, wantStatus: 413, problem: true},
			{req: idemReq{key: "k", body: "1234"}, wantStatus: 201, wantRuns: 1},
		}},
		{name: "scopes are isolated", handler: idemCreated(), steps: []step{
			{req: idemReq{key: "k", auth: "Bearer alice"}, wantStatus: 201, wantRuns: 1},
			{req: idemReq{key: "k", auth: "Bearer bob"}, wantStatus: 201, wantRuns: 2},
			{req: idemReq{key: "k"}, wantStatus: 201, wantRuns: 3},
			{req: idemReq{key: "k", auth: "Bearer alice"}, wantStatus: 201, wantRuns: 3, replayed: true},
		}},
		{name: "4xx stored", handler: status(404), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 404, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 404, wantRuns: 1, replayed: true},
		}},
		{name: "3xx stored", handler: status(303), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 303, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 303, wantRuns: 1, replayed: true},
		}},
		{name: "500 released", handler: status(500), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 500, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 500, wantRuns: 2},
		}},
		{name: "500 stored with WithStoreServerErrors", handler: status(500), opts: []idempotency.Option{idempotency.WithStoreServerErrors(true)}, steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 500, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 500, wantRuns: 1, replayed: true},
		}},
		{name: "503 released even with WithStoreServerErrors", handler: status(503), opts: []idempotency.Option{idempotency.WithStoreServerErrors(true)}, steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 503, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 503, wantRuns: 2},
		}},
		{name: "429 released", handler: status(429), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 429, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 429, wantRuns: 2},
		}},
		{name: "409 released", handler: status(409), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 409, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 409, wantRuns: 2},
		}},
		{name: "408 and 425 released", handler: status(425), steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 425, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 425, wantRuns: 2},
		}},
		{name: "nothing written is a stored 200", handler: func(http.ResponseWriter, *http.Request) {}, steps: []step{
			{req: idemReq{key: "k"}, wantStatus: 200, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: 200, wantRuns: 1, replayed: true},
		}},
		{name: "panic released", handler: func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, steps: []step{
			{req: idemReq{key: "k"}, wantStatus: -1, wantRuns: 1},
			{req: idemReq{key: "k"}, wantStatus: -1, wantRuns: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIdemServer(t, idempotency.NewMemoryStore(), tt.handler, tt.opts...)
			for i, st := range tt.steps {
				r, err := s.send(context.Background(), st.req)
				if st.wantStatus == -1 {
					if err == nil {
						t.Fatalf("step %d: got %d, want the connection aborted", i, r.status)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", i, err)
				} else if st.problem {
					wantIdemProblem(t, r, st.wantStatus)
				} else if r.status != st.wantStatus {
					t.Fatalf("step %d: status = %d (%s), want %d", i, r.status, r.body, st.wantStatus)
				}
				if got := r.header.Get("Idempotent-Replayed") == "true"; err == nil && got != st.replayed {
					t.Fatalf("step %d: replayed = %v, want %v", i, got, st.replayed)
				}
				if n := s.runs.Load(); n != st.wantRuns {
					t.Fatalf("step %d: handler ran %d times, want %d", i, n, st.wantRuns)
				}
			}
		})
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(201)
	})
	done := make(chan idemResp)
	go func() {
		r, _ := s.send(context.Background(), idemReq{key: "k", body: "a"})
		done <- r
	}()
	<-entered
	dup := s.do(t, idemReq{key: "k", body: "a"})
	wantIdemProblem(t, dup, http.StatusConflict)
	if dup.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", dup.header.Get("Retry-After"))
	}
	wantIdemProblem(t, s.do(t, idemReq{key: "k", body: "other"}), http.StatusUnprocessableEntity)
	close(release)
	if r := <-done; r.status != 201 {
		t.Fatalf("first = %d, want 201", r.status)
	}
	if r := s.do(t, idemReq{key: "k", body: "a"}); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after completion = %d %v, want a 201 replay", r.status, r.header)
	}
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	s := newIdemServer(t, idempotency.NewMemoryStore(), idemCreated())
	s.c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		bodies   = map[string]int{}
		sem      = make(chan struct{}, 64)
	)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.send(context.Background(), idemReq{key: "dup", body: "pay"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			statuses[r.status]++
			if r.status == 201 {
				bodies[r.body]++
			}
		}()
	}
	wg.Wait()
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
	if statuses[201]+statuses[409] != 1000 || len(bodies) != 1 {
		t.Fatalf("statuses %v, bodies %v; want only the first response (one body) or 409", statuses, bodies)
	}
}

func TestIdempotencyClientGone(t *testing.T) {
	t.Run("nothing written: released", func(t *testing.T) {
		entered, returned := make(chan struct{}, 1), make(chan struct{}, 1)
		var first atomic.Bool
		s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
			if first.Swap(true) {
				return // the retry
			}
			entered <- struct{}{}
			<-r.Context().Done()
			returned <- struct{}{}
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-entered; cancel() }()
		if _, err := s.send(ctx, idemReq{key: "k"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled request = %v, want context.Canceled", err)
		}
		<-returned
		// The release happens before ServeHTTP returns; the next request
		// may race it only by a moment: it must execute, not conflict.
		var r idemResp
		for range 100 {
			r = s.do(t, idemReq{key: "k"})
			if r.status != http.StatusConflict {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := s.runs.Load(); n != 2 {
			t.Fatalf("handler ran %d times (last status %d), want 2: a retry executes", n, r.status)
		}
	})
	t.Run("status written: stored", func(t *testing.T) {
		entered, left, returned := make(chan struct{}, 1), make(chan struct{}), make(chan struct{}, 1)
		s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-left
			w.WriteHeader(201) // the payment ran: keep it
			io.WriteString(w, "paid")
			returned <- struct{}{}
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-entered; cancel(); time.Sleep(10 * time.Millisecond); close(left) }()
		_, _ = s.send(ctx, idemReq{key: "k"})
		<-returned
		var r idemResp
		for range 100 {
			r = s.do(t, idemReq{key: "k"})
			if r.status != http.StatusConflict {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if r.status != 201 || r.body != "paid" || r.header.Get("Idempotent-Replayed") != "true" || s.runs.Load() != 1 {
			t.Fatalf("after the client left = %d %q (runs %d), want the stored 201", r.status, r.body, s.runs.Load())
		}
	})
}

func TestIdempotencyOversizedResponse(t *testing.T) {
	big := strings.Repeat("x", 100)
	s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			io.WriteString(w, big[:10])
		}
	}, idempotency.WithMaxResponseBytes(64))
	first := s.do(t, idemReq{key: "k"})
	if first.status != 200 || first.body != big {
		t.Fatalf("first = %d, %d bytes; want 200 and all %d bytes", first.status, len(first.body), len(big))
	}
	dup := s.do(t, idemReq{key: "k"})
	wantIdemProblem(t, dup, http.StatusConflict)
	if dup.header.Get("Idempotent-Replayed") != "true" || dup.header.Get("Retry-After") != "" {
		t.Fatalf("duplicate of an oversized response: headers %v; want Idempotent-Replayed and no Retry-After", dup.header)
	}
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestIdempotencyFlushAndUnwrap(t *testing.T) {
	s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("writer is not an http.Flusher")
		}
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
			t.Error("writer has no Unwrap")
		}
		io.WriteString(w, "part1,")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush = %v", err)
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("ResponseController.SetWriteDeadline = %v (Unwrap should reach the server's writer)", err)
		}
		io.WriteString(w, "part2")
	})
	first := s.do(t, idemReq{key: "k"})
	dup := s.do(t, idemReq{key: "k"})
	if first.body != "part1,part2" || dup.body != first.body || dup.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("streamed %q, replayed %q (%v); want the same body replayed", first.body, dup.body, dup.header)
	}
}

func TestIdempotencyLeaseBoundsHandler(t *testing.T) {
	s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		if !ok || time.Until(dl) > 5*time.Second {
			t.Errorf("handler deadline = %v, %v; want within the 5s lease", dl, ok)
		}
	}, idempotency.WithLease(5*time.Second))
	s.do(t, idemReq{key: "k"})
}

// storeFunc is a Store whose Claim is given.
type idemFailingStore struct {
	idempotency.Store
	claim func(ctx context.Context) error
}

func (f idemFailingStore) Claim(ctx context.Context, key string, tok idempotency.Token, fp idempotency.Fingerprint, lease time.Duration) (idempotency.Claim, error) {
	if err := f.claim(ctx); err != nil {
		return idempotency.Claim{}, err
	}
	return f.Store.Claim(ctx, key, tok, fp, lease)
}

func TestIdempotencyStoreDown(t *testing.T) {
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: connection refused") }
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tc := range []struct {
		name  string
		claim func(context.Context) error
	}{{"down", down}, {"hung", hung}} {
		t.Run(tc.name+" fails closed", func(t *testing.T) {
			s := newIdemServer(t, idemFailingStore{idempotency.NewMemoryStore(), tc.claim}, idemCreated(),
				idempotency.WithStoreTimeout(20*time.Millisecond))
			r := s.do(t, idemReq{key: "k"})
			wantIdemProblem(t, r, http.StatusServiceUnavailable)
			if r.header.Get("Retry-After") != "1" || strings.Contains(r.body, "10.0.0.7") || s.runs.Load() != 0 {
				t.Fatalf("503 = %v %q, runs %d; want Retry-After 1, no address, handler not run", r.header, r.body, s.runs.Load())
			}
		})
		t.Run(tc.name+" fails open", func(t *testing.T) {
			s := newIdemServer(t, idemFailingStore{idempotency.NewMemoryStore(), tc.claim}, idemCreated(),
				idempotency.WithStoreTimeout(20*time.Millisecond), idempotency.WithFailOpen(true))
			if r := s.do(t, idemReq{key: "k"}); r.status != 201 || s.runs.Load() != 1 {
				t.Fatalf("fail open = %d, runs %d; want the handler's 201", r.status, s.runs.Load())
			}
		})
	}
}

func TestIdempotencyBodyReachesHandler(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(b, body) {
			t.Errorf("handler read %d bytes, %v; want the %d sent", len(b), err, len(body))
		}
	})
	s.do(t, idemReq{key: "k", body: string(body)})
}

// The middleware stacked on itself (same store, same options): the inner
// one sees the outer one's claim and passes through, instead of answering
// every first request with 409.
func TestIdempotencyNestedInItself(t *testing.T) {
	store := idempotency.NewMemoryStore()
	var runs atomic.Int64
	h := idemCreated()
	inner := bulwarkhttp.Idempotency(store)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		h(w, r)
	}))
	srv := newIdemLoopback(t, bulwarkhttp.Idempotency(store)(inner))
	s := &idemServer{srv: srv, c: srv.Client()}
	first := s.do(t, idemReq{key: "k", body: "a"})
	again := s.do(t, idemReq{key: "k", body: "a"})
	if first.status != 201 || again.status != 201 || again.body != first.body || again.header.Get("Idempotent-Replayed") != "true" || runs.Load() != 1 {
		t.Fatalf("nested: first %d, again %d %v (runs %d); want 201 then its replay from one run",
			first.status, again.status, again.header, runs.Load())
	}
}

// Every way a response can reach the client through the held writer:
// what the client gets is what the handler wrote, and a duplicate replays
// it when it fit the limit (64 bytes here).
func TestIdempotencyWriterShapes(t *testing.T) {
	big := strings.Repeat("b", 100)
	tests := []struct {
		name       string
		write      func(w http.ResponseWriter)
		want       string
		replayable bool
	}{
		{"one small write", func(w http.ResponseWriter) { io.WriteString(w, "small") }, "small", true},
		{"exactly the limit", func(w http.ResponseWriter) { io.WriteString(w, big[:64]) }, big[:64], true},
		{"one write over the limit", func(w http.ResponseWriter) { io.WriteString(w, big) }, big, false},
		{"small then over", func(w http.ResponseWriter) { io.WriteString(w, "ab"); io.WriteString(w, big) }, "ab" + big, false},
		{"flush then small", func(w http.ResponseWriter) {
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			io.WriteString(w, "cd")
		}, "abcd", true},
		{"flush then over", func(w http.ResponseWriter) {
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			io.WriteString(w, big)
			io.WriteString(w, "z")
		}, "ab" + big + "z", false},
		{"flush before anything", func(w http.ResponseWriter) { w.(http.Flusher).Flush(); io.WriteString(w, "x") }, "x", true},
		{"early hints pass through", func(w http.ResponseWriter) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "x")
		}, "x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newIdemServer(t, idempotency.NewMemoryStore(), func(w http.ResponseWriter, r *http.Request) { tt.write(w) },
				idempotency.WithMaxResponseBytes(64))
			first := s.do(t, idemReq{key: "k"})
			if first.status != 200 || first.body != tt.want {
				t.Fatalf("first = %d %q, want 200 %q", first.status, first.body, tt.want)
			}
			dup := s.do(t, idemReq{key: "k"})
			if tt.replayable && (dup.status != 200 || dup.body != tt.want) {
				t.Fatalf("duplicate = %d %q, want the replay of %q", dup.status, dup.body, tt.want)
			}
			if !tt.replayable {
				wantIdemProblem(t, dup, http.StatusConflict)
			}
			if s.runs.Load() != 1 {
				t.Fatalf("handler ran %d times, want 1", s.runs.Load())
			}
		})
	}
}
