package bulwarkhttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// scripted serves the statuses in order (the last one repeats), each with
// the body "<n>" where n is the 1-based request number, and records the
// requests' headers and bodies.
type scripted struct {
	statuses []int
	header   http.Header // added to every response

	mu      sync.Mutex
	headers []http.Header
	bodies  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.bodies = append(s.bodies, string(b))
	n := len(s.headers)
	s.mu.Unlock()
	status := s.statuses[min(n, len(s.statuses))-1]
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, strconv.Itoa(n))
}

func (s *scripted) requests() ([]http.Header, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers, s.bodies
}

// closeTracker is a base RoundTripper that records whether each response
// body it returned was closed.
type closeTracker struct {
	base http.RoundTripper

	mu     sync.Mutex
	bodies []*trackedBody
}

type trackedBody struct {
	io.ReadCloser
	mu     sync.Mutex
	closed bool
}

func (b *trackedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.ReadCloser.Close()
}

func (b *trackedBody) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (c *closeTracker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	tb := &trackedBody{ReadCloser: resp.Body}
	resp.Body = tb
	c.mu.Lock()
	c.bodies = append(c.bodies, tb)
	c.mu.Unlock()
	return resp, nil
}

func (c *closeTracker) closed() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bool
	for _, b := range c.bodies {
		out = append(out, b.isClosed())
	}
	return out
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return string(b)
}

func TestTransportClassification(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		retryAfter    string
		wantClass     error // nil: no class
		wantErr       bool
		wantHint      time.Duration
		wantRetryable bool
	}{
		{"200", 200, "", nil, false, 0, false},
		{"404", 404, "", nil, false, 0, false},
		{"429", 429, "", bulwark.ErrRemoteRejected, true, 0, true},
		{"429 with hint", 429, "2", bulwark.ErrRemoteRejected, true, 2 * time.Second, true},
		{"500", 500, "", nil, true, 0, true},
		{"501", 501, "", nil, true, 0, true},
		{"502", 502, "", bulwark.ErrRemoteUnavailable, true, 0, true},
		{"503 delta-seconds", 503, "7", bulwark.ErrRemoteUnavailable, true, 7 * time.Second, true},
		{"503 zero", 503, "0", bulwark.ErrRemoteUnavailable, true, 0, true},
		{"503 garbage", 503, "soon", bulwark.ErrRemoteUnavailable, true, 0, true},
		{"504", 504, "", bulwark.ErrRemoteUnavailable, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{statuses: []int{tt.status}}
			if tt.retryAfter != "" {
				s.header = http.Header{"Retry-After": {tt.retryAfter}}
			}
			srv, c := serve(t, s)
			rec := &policytest.Recorder{}
			client := &http.Client{Transport: bulwarkhttp.Transport(rec, c.Transport)}
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Fatalf("Get() = %v, want the response", err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := readAll(t, resp); got != "1" {
				t.Errorf("body = %q, want %q intact", got, "1")
			}
			perr := rec.Last()
			if (perr != nil) != tt.wantErr {
				t.Fatalf("policy saw %v, want an error: %v", perr, tt.wantErr)
			}
			if perr == nil {
				return
			}
			for _, class := range []error{bulwark.ErrRemoteRejected, bulwark.ErrRemoteUnavailable, bulwark.ErrRejected, bulwark.ErrUnavailable} {
				if got, want := errors.Is(perr, class), class == tt.wantClass; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", perr, class, got, want)
				}
			}
			var se *bulwarkhttp.StatusError
			if !errors.As(perr, &se) || se.StatusCode != tt.status || se.Attempt != 1 {
				t.Fatalf("policy saw %#v, want a *StatusError for %d, attempt 1", perr, tt.status)
			}
			if got, _ := bulwark.RetryAfter(perr); got != tt.wantHint {
				t.Errorf("RetryAfter = %v, want %v", got, tt.wantHint)
			}
			if got, ok := bulwark.Retryable(perr); !ok || got != tt.wantRetryable {
				t.Errorf("Retryable = %v, %v; want %v, true", got, ok, tt.wantRetryable)
			}
		})
	}
}

func TestTransportRetryAfterHTTPDate(t *testing.T) {
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	s := &scripted{statuses: []int{503}, header: http.Header{"Retry-After": {date}}}
	srv, c := serve(t, s)
	rec := &policytest.Recorder{}
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(rec, c.Transport)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	perr := rec.Last()
	got, ok := bulwark.RetryAfter(perr)
	if !ok || got <= 58*time.Minute || got > time.Hour {
		t.Errorf("RetryAfter = %v, %v; want about an hour (HTTP-date %s)", got, ok, date)
	}
}

func TestStatusErrorRetryAfterDate(t *testing.T) {
	// The HTTP-date form is measured from the clock: fake time makes it
	// exact.
	bulwarktestSynctest(t, func(t *testing.T) {
		now := time.Now()
		tests := []struct {
			name string
			give string
			want time.Duration
		}{
			{"delta", "120", 2 * time.Minute},
			{"date ahead", now.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
			{"date past", now.Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
			{"negative", "-5", 0},
			{"huge", "99999999999999999999", 365 * 24 * time.Hour},
			{"garbage", "tomorrow", 0},
		}
		for _, tt := range tests {
			resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {tt.give}}}
			se := bulwarkhttp.NewStatusError(resp, now).(*bulwarkhttp.StatusError)
			if got := se.RetryAfter(); got != tt.want {
				t.Errorf("%s: RetryAfter(%q) = %v, want %v", tt.name, tt.give, got, tt.want)
			}
		}
		if se := bulwarkhttp.NewStatusError(&http.Response{StatusCode: 404}, now); se != nil {
			t.Errorf("NewStatusError(404) = %v, want nil", se)
		}
	})
}

func TestTransportLastResponseReturned(t *testing.T) {
	s := &scripted{statuses: []int{503, 502, 503}}
	srv, c := serve(t, s)
	tracker := &closeTracker{base: c.Transport}
	r := &retrier{n: 3}
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(r, tracker)}).Get(srv.URL)
	if err != nil {
		t.Fatalf("Get() = %v, want the last response", err)
	}
	if resp.StatusCode != 503 {
		t.Errorf("status = %d, want 503", resp.StatusCode)
	}
	if got := readAll(t, resp); got != "3" {
		t.Errorf("body = %q, want the third answer's %q", got, "3")
	}
	if got := len(r.seen()); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	closed := tracker.closed()
	if len(closed) != 3 || !closed[0] || !closed[1] {
		t.Errorf("bodies closed = %v, want the two retried ones closed", closed)
	}
	headers, _ := s.requests()
	for i, h := range headers {
		if got, want := h.Get("Bulwark-Attempt"), strconv.Itoa(i+1); got != want {
			t.Errorf("request %d: Bulwark-Attempt = %q, want %q", i+1, got, want)
		}
	}
}

func TestTransportRetrySucceeds(t *testing.T) {
	s := &scripted{statuses: []int{503, 200}}
	srv, c := serve(t, s)
	tracker := &closeTracker{base: c.Transport}
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(&retrier{n: 3}, tracker)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || readAll(t, resp) != "2" {
		t.Errorf("got status %d, want 200 from the second attempt", resp.StatusCode)
	}
	if closed := tracker.closed(); len(closed) != 2 || !closed[0] {
		t.Errorf("bodies closed = %v, want the first one closed", closed)
	}
}

func TestTransportRefusal(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv, c := serve(t, s)
	want := &refusal{class: bulwark.ErrUnavailable, hint: time.Second}
	body := &trackedBody{ReadCloser: io.NopCloser(strings.NewReader("payload"))}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
	_, err := (&http.Client{Transport: bulwarkhttp.Transport(policytest.Refuse(want), c.Transport)}).Do(req)
	var uerr *url.Error
	if !errors.As(err, &uerr) || !errors.Is(err, bulwark.ErrUnavailable) {
		t.Fatalf("Do() = %v, want a *url.Error wrapping the refusal", err)
	}
	if d, ok := bulwark.RetryAfter(err); !ok || d != time.Second {
		t.Errorf("RetryAfter = %v, %v; want the refusal's 1s", d, ok)
	}
	if headers, _ := s.requests(); len(headers) != 0 {
		t.Errorf("the server got %d requests, want none", len(headers))
	}
	if !body.isClosed() {
		t.Error("the request body was not closed (RoundTripper contract)")
	}
}

func TestTransportUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	for _, tt := range []struct {
		name          string
		method        string
		wantRetryable bool
	}{
		{"GET", http.MethodGet, true},
		{"POST", http.MethodPost, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &policytest.Recorder{}
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			req, _ := http.NewRequest(tt.method, addr, nil)
			_, err := (&http.Client{Transport: bulwarkhttp.Transport(rec, base)}).Do(req)
			if !errors.Is(err, bulwark.ErrRemoteUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("Do() = %v, want ErrRemoteUnavailable wrapping ECONNREFUSED", err)
			}
			var te *bulwarkhttp.TransportError
			if !errors.As(err, &te) || te.Attempt != 1 {
				t.Fatalf("Do() = %v, want a *TransportError of attempt 1", err)
			}
			if got, ok := bulwark.Retryable(err); !ok || got != tt.wantRetryable {
				t.Errorf("Retryable = %v, %v; want %v", got, ok, tt.wantRetryable)
			}
		})
	}
}

func TestTransportReplay(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		body      func() io.Reader
		header    http.Header
		wantSent  int
		wantBody  string
		retryable bool
	}{
		{"GET", http.MethodGet, nil, nil, 3, "", true},
		{"PUT with a rewindable body", http.MethodPut, func() io.Reader { return bytes.NewReader([]byte("put-body")) }, nil, 3, "put-body", true},
		{"POST with Idempotency-Key", http.MethodPost, func() io.Reader { return strings.NewReader("post-body") },
			http.Header{"Idempotency-Key": {`"k-1"`}}, 3, "post-body", true},
		{"POST without a key", http.MethodPost, func() io.Reader { return strings.NewReader("post-body") }, nil, 1, "post-body", false},
		{"PUT with a body that cannot rewind", http.MethodPut, func() io.Reader { return io.MultiReader(strings.NewReader("once")) }, nil, 1, "once", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{statuses: []int{503}}
			srv, c := serve(t, s)
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			req, _ := http.NewRequest(tt.method, srv.URL, body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			before := req.Header.Clone()
			// force: the retrier calls fn again even for errors that
			// say they must not be retried; the Transport still never
			// sends a non-replayable request twice.
			r := &retrier{n: 3, force: true}
			resp, err := (&http.Client{Transport: bulwarkhttp.Transport(r, c.Transport)}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			headers, bodies := s.requests()
			if len(headers) != tt.wantSent {
				t.Fatalf("server got %d requests, want %d", len(headers), tt.wantSent)
			}
			for i, b := range bodies {
				if b != tt.wantBody {
					t.Errorf("request %d body = %q, want %q", i+1, b, tt.wantBody)
				}
			}
			seen := r.seen()
			for i, e := range seen {
				if got, _ := bulwark.Retryable(e); got != tt.retryable {
					t.Errorf("attempt %d: Retryable = %v, want %v", i+1, got, tt.retryable)
				}
				if !tt.retryable && e != seen[0] {
					t.Errorf("attempt %d returned %v, want the first error repeated", i+1, e)
				}
			}
			if len(req.Header) != len(before) || req.Header.Get("Bulwark-Attempt") != "" || req.Header.Get("Bulwark-Priority") != "" {
				t.Errorf("the caller's request headers changed: %v, want %v", req.Header, before)
			}
		})
	}
}

// deadlineSpy runs p and hands the test the context fn got.
type deadlineSpy struct {
	p    bulwark.Policy
	ctxs chan context.Context
}

func (d *deadlineSpy) Do(ctx context.Context, fn func(context.Context) error) error {
	return d.p.Do(ctx, func(ctx context.Context) error {
		d.ctxs <- ctx
		return fn(ctx)
	})
}

func TestTransportBodyOutlivesAttemptDeadline(t *testing.T) {
	more := make(chan struct{})
	srv, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head|")
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "tail")
	}))
	// Long enough for loopback headers on a loaded machine.
	spy := &deadlineSpy{p: bulwark.Timeout(300 * time.Millisecond), ctxs: make(chan context.Context, 1)}
	client := &http.Client{Transport: bulwarkhttp.Transport(spy, c.Transport)}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, len("head|"))
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	// The attempt's context ended when the policy returned, and its
	// deadline passes while the body still streams.
	actx := <-spy.ctxs
	<-actx.Done()
	dl, ok := actx.Deadline()
	if !ok {
		t.Fatal("the attempt's context has no deadline")
	}
	<-time.After(time.Until(dl) + time.Millisecond)
	close(more)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "tail" {
		t.Errorf("after the deadline: read %q, %v; want %q", rest, err, "tail")
	}
}

func TestTransportAttemptDeadlineBeforeHeaders(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	client := &http.Client{Transport: bulwarkhttp.Transport(bulwark.Timeout(20*time.Millisecond), c.Transport)}
	_, err := client.Get(srv.URL)
	if !errors.Is(err, bulwark.ErrTimeout) || errors.Is(err, bulwark.ErrRemoteUnavailable) {
		t.Errorf("Get() = %v, want ErrTimeout and no remote class", err)
	}
}

func TestTransportCallerCancelsBodyRead(t *testing.T) {
	srv, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head|")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(bulwark.Timeout(time.Minute), c.Transport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, len("head|"))
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Errorf("body read after the caller cancelled = %v, want context.Canceled", err)
	}
}

func TestTransportAdmitterHoldsUntilBodyDone(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		status   int
		finish   func(io.ReadCloser)
		wantErr  error // what done receives; nil for success
		wantNone bool
	}{
		{"read to EOF", http.MethodGet, 200, func(b io.ReadCloser) { _, _ = io.ReadAll(b) }, nil, false},
		{"closed early", http.MethodGet, 200, func(b io.ReadCloser) { _ = b.Close() }, nil, false},
		// A replayable request's failed answer is buffered and its permit
		// released at once (TestTransportAdmitterReleasesRetriedAnswerBeforeBackoff);
		// a POST's is held like any other body.
		{"503 closed", http.MethodPost, 503, func(b io.ReadCloser) { _ = b.Close() }, bulwark.ErrRemoteUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{statuses: []int{tt.status}}
			srv, c := serve(t, s)
			g := &policytest.Gate{Limit: 1}
			client := &http.Client{Transport: bulwarkhttp.Transport(g, c.Transport)}
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := g.State(); n != 1 {
				t.Fatalf("in flight after Do = %d, want the permit held (1)", n)
			}
			// The permit is held: a second request is refused.
			if _, err := client.Get(srv.URL); !errors.Is(err, bulwark.ErrUnavailable) {
				t.Errorf("second Get() while the body is open = %v, want the gate's refusal", err)
			}
			tt.finish(resp.Body)
			n, results := g.State()
			if n != 0 || len(results) != 1 {
				t.Fatalf("after the body: in flight %d, results %v; want 0 and one result", n, results)
			}
			if tt.wantErr == nil && results[0] != nil || tt.wantErr != nil && !errors.Is(results[0], tt.wantErr) {
				t.Errorf("done(%v), want %v", results[0], tt.wantErr)
			}
			_ = resp.Body.Close() // idempotent
			if _, results := g.State(); len(results) != 1 {
				t.Errorf("done called %d times, want once", len(results))
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		g := &policytest.Gate{Limit: 1}
		base := &http.Transport{}
		defer base.CloseIdleConnections()
		if _, err := (&http.Client{Transport: bulwarkhttp.Transport(g, base)}).Get(addr); !errors.Is(err, bulwark.ErrRemoteUnavailable) {
			t.Fatalf("Get() = %v, want ErrRemoteUnavailable", err)
		}
		if n, results := g.State(); n != 0 || len(results) != 1 || !errors.Is(results[0], bulwark.ErrRemoteUnavailable) {
			t.Errorf("in flight %d, results %v; want the permit released with the error", n, results)
		}
	})
}

func TestTransportStackedKeepsPermitAcrossRetries(t *testing.T) {
	s := &scripted{statuses: []int{503, 200}}
	srv, c := serve(t, s)
	g := &policytest.Gate{Limit: 1}
	rt := bulwarkhttp.Transport(&retrier{n: 3}, bulwarkhttp.Transport(g, c.Transport))
	resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if n, results := g.State(); n != 1 || len(results) != 1 || !errors.Is(results[0], bulwark.ErrRemoteUnavailable) {
		t.Errorf("in flight %d, results %v; want the retried 503's permit released and the 200's held", n, results)
	}
	if got := readAll(t, resp); got != "2" {
		t.Errorf("body = %q, want %q", got, "2")
	}
	if n, _ := g.State(); n != 0 {
		t.Errorf("in flight after the body = %d, want 0", n)
	}
	headers, _ := s.requests()
	if len(headers) != 2 || headers[1].Get("Bulwark-Attempt") != "2" {
		t.Errorf("second request's Bulwark-Attempt = %q, want 2", headers[len(headers)-1].Get("Bulwark-Attempt"))
	}
}

func TestPriorityPropagatesEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		propagate bool
		want      string
	}{
		{"sheddable", "sheddable", true, "sheddable"},
		{"untrusted critical-plus", "critical-plus", true, "critical"},
		{"none", "", true, "critical"},
		{"not propagated", "sheddable", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := &scripted{statuses: []int{200}}
			bsrv, bc := serve(t, backend)
			client := &http.Client{Transport: bulwarkhttp.Transport(policytest.PassThrough, bc.Transport,
				bulwarkhttp.WithPropagatePriority(func(*http.Request) bool { return tt.propagate }))}
			front := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, bsrv.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				_, _ = io.Copy(w, resp.Body)
				resp.Body.Close()
			}), policytest.PassThrough)
			fsrv, fc := serve(t, front)
			hdr := http.Header{}
			if tt.give != "" {
				hdr.Set("Bulwark-Priority", tt.give)
			}
			if resp, _ := get(t, fc, fsrv.URL, hdr); resp.StatusCode != 200 {
				t.Fatalf("front answered %d", resp.StatusCode)
			}
			headers, _ := backend.requests()
			if got := headers[0].Get("Bulwark-Priority"); got != tt.want {
				t.Errorf("backend saw Bulwark-Priority %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGateKeepsContract(t *testing.T) {
	// The test Admitter used above keeps the policy contract.
	bulwarktest.TestPolicy(t, func() bulwark.Policy { return &policytest.Gate{Limit: 100} })
}

func TestTransportConcurrentAttempts(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv, c := serve(t, s)
	tracker := &closeTracker{base: c.Transport}
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(hedger{}, tracker)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed := tracker.closed()
	open := 0
	for _, c := range closed {
		if !c {
			open++
		}
	}
	if len(closed) != 2 || open != 1 {
		t.Errorf("bodies closed = %v, want two attempts and only the returned body open", closed)
	}
	if got := readAll(t, resp); got != "1" && got != "2" {
		t.Errorf("body = %q, want one attempt's", got)
	}
}

func TestTransportNoBodyReleasesAtOnce(t *testing.T) {
	// A response without a body (HEAD, 204, 304) is finished when its
	// headers arrive: callers rarely close http.NoBody, and the permit
	// must not wait for them.
	tests := []struct {
		name   string
		method string
		status int
	}{
		{"HEAD", http.MethodHead, 200},
		{"204", http.MethodGet, http.StatusNoContent},
		{"HEAD 503", http.MethodHead, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			}))
			g := &policytest.Gate{Limit: 1}
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			resp, err := (&http.Client{Transport: bulwarkhttp.Transport(g, c.Transport)}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Body != http.NoBody {
				t.Errorf("Body = %T, want http.NoBody kept", resp.Body)
			}
			n, results := g.State()
			if n != 0 || len(results) != 1 {
				t.Fatalf("in flight %d, results %v; want the permit released once, without a Close", n, results)
			}
			if (results[0] != nil) != (tt.status >= 500) {
				t.Errorf("done(%v) for status %d", results[0], tt.status)
			}
			_ = resp.Body.Close()
			if _, results := g.State(); len(results) != 1 {
				t.Errorf("done called %d times, want once", len(results))
			}
		})
	}
}

type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("test: base panicked") }

func TestTransportAdmitterReleasedWhenBasePanics(t *testing.T) {
	// net/http's server recovers a handler's panic, so a panicking base
	// RoundTripper must not keep the permit for good: the panic passes
	// through and the permit is released as a failure.
	g := &policytest.Gate{Limit: 1}
	rt := bulwarkhttp.Transport(g, panicTransport{})
	got := func() (v any) {
		defer func() { v = recover() }()
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		_, _ = rt.RoundTrip(req)
		return nil
	}()
	if got != "test: base panicked" {
		t.Fatalf("recovered %v, want the base's panic passed through", got)
	}
	if n, results := g.State(); n != 0 || len(results) != 1 || results[0] == nil {
		t.Errorf("in flight %d, results %v; want the permit released once with an error", n, results)
	}
}

func TestTransportAttemptHeaderCountsAttempts(t *testing.T) {
	// A policy that calls fn again without bulwark.WithAttempt (a
	// hand-written retry loop) still sends each attempt's number, the one
	// its StatusError reports.
	s := &scripted{statuses: []int{503}}
	srv, c := serve(t, s)
	var seen []error
	loop := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		var err error
		for range 3 {
			err = fn(ctx)
			seen = append(seen, err)
		}
		return err
	})
	resp, err := (&http.Client{Transport: bulwarkhttp.Transport(loop, c.Transport)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	headers, _ := s.requests()
	for i, h := range headers {
		want := strconv.Itoa(i + 1)
		if got := h.Get("Bulwark-Attempt"); got != want {
			t.Errorf("request %d: Bulwark-Attempt = %q, want %q", i+1, got, want)
		}
		var se *bulwarkhttp.StatusError
		if errors.As(seen[i], &se) && strconv.Itoa(se.Attempt) != h.Get("Bulwark-Attempt") {
			t.Errorf("request %d: StatusError.Attempt = %d, header %q", i+1, se.Attempt, h.Get("Bulwark-Attempt"))
		}
	}
}

// stalledBase answers every request 503 with a body that never ends.
type stalledBase struct {
	mu    sync.Mutex
	calls int
	pipes []*io.PipeWriter
}

func (s *stalledBase) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	s.mu.Lock()
	s.calls++
	s.pipes = append(s.pipes, pw)
	s.mu.Unlock()
	return &http.Response{StatusCode: 503, Header: http.Header{}, Body: pr, Request: req}, nil
}

func TestTransportRetryNotStalledByFailedBody(t *testing.T) {
	// The answer being retried is drained a little for connection reuse;
	// a body that stalls must not hold the next attempt (only the caller's
	// context covers a body once its headers arrived).
	synctest.Test(t, func(t *testing.T) {
		base := &stalledBase{}
		rt := bulwarkhttp.Transport(&retrier{n: 2}, base)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Errorf("RoundTrip() = %v, want the last 503", err)
				return
			}
			_ = resp.Body.Close()
		}()
		time.Sleep(time.Minute) // fake time: long past any drain bound
		synctest.Wait()
		base.mu.Lock()
		calls := base.calls
		for _, pw := range base.pipes {
			_ = pw.Close() // unblock whatever still waits
		}
		base.mu.Unlock()
		<-done
		if calls != 2 {
			t.Errorf("attempts sent = %d, want 2 (the retry stalled on the first body)", calls)
		}
	})
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// answers returns a base that answers the n-th request with statuses[n]
// and bodies[n].
func answers(statuses []int, bodies []string) http.RoundTripper {
	var mu sync.Mutex
	n := 0
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		i := min(n, len(statuses)-1)
		n++
		mu.Unlock()
		return &http.Response{StatusCode: statuses[i], Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(bodies[i])), Request: r}, nil
	})
}

func TestTransportAdmitterReleasesRetriedAnswerBeforeBackoff(t *testing.T) {
	// In Transport(retry, Transport(admitters, base)) a failed answer's
	// body is closed only when the next attempt starts; its permit must
	// not be held through the retry's backoff (a bulkhead would fill with
	// sleeping retries). A small failure body is buffered, so the permit
	// goes at once and the body stays intact for the caller.
	big := strings.Repeat("x", 200<<10)
	tests := []struct {
		name        string
		body        string
		wantHeld    int // permits held while the policy waits
		wantRetried bool
	}{
		{"small body", "busy", 0, true},
		{"body past the buffer", big, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &policytest.Gate{Limit: 1}
			held := -1
			p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
				err := fn(ctx)
				held, _ = g.State() // a backoff would run here
				if err == nil || !tt.wantRetried {
					return err
				}
				return fn(bulwark.WithAttempt(ctx, 2))
			})
			rt := bulwarkhttp.Transport(p, bulwarkhttp.Transport(g, answers([]int{503, 200}, []string{tt.body, "ok"})))
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if held != tt.wantHeld {
				t.Errorf("permits held after the failed attempt = %d, want %d", held, tt.wantHeld)
			}
			want := "ok"
			if !tt.wantRetried {
				want = tt.body
			}
			if got := readAll(t, resp); got != want {
				t.Errorf("body = %d bytes, want %d bytes intact", len(got), len(want))
			}
			n, results := g.State()
			if n != 0 || len(results) != 1+btoi(tt.wantRetried) || !errors.Is(results[0], bulwark.ErrRemoteUnavailable) {
				t.Errorf("in flight %d, results %v; want every permit released, the first with the 503", n, results)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestTransportAdmitterFailureBodyBreaksOff(t *testing.T) {
	broken := errors.New("test: connection reset")
	g := &policytest.Gate{Limit: 1}
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 503, Header: http.Header{}, Request: r,
			Body: io.NopCloser(io.MultiReader(strings.NewReader("par"), failingReader{broken}))}, nil
	})
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	resp, err := bulwarkhttp.Transport(g, base).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	if string(b) != "par" || !errors.Is(rerr, broken) {
		t.Errorf("body = %q, %v; want what arrived, then the read error", b, rerr)
	}
	if n, results := g.State(); n != 0 || len(results) != 1 || !errors.Is(results[0], bulwark.ErrRemoteUnavailable) {
		t.Errorf("in flight %d, results %v; want the permit released once with the 503", n, results)
	}
}
