package scenario_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// problem is an RFC 9457 problem+json body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// answer is what a client saw of one response on the wire.
type answer struct {
	status          int
	retryAfter      string
	contentType     string
	rateLimit       string
	rateLimitPolicy string
	body            string
	problem         problem // decoded when contentType is application/problem+json
}

// send sends a request with the headers hdr (name, value pairs) through
// client and reads the whole answer. A transport error fails the test.
func send(t *testing.T, client *http.Client, method, url string, hdr ...string) answer {
	t.Helper()
	a, err := trySend(t, client, method, url, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// trySend is send that returns the client's error.
func trySend(t *testing.T, client *http.Client, method, url string, hdr ...string) (answer, error) {
	t.Helper()
	return trySendCtx(t, context.Background(), client, method, url, hdr...)
}

func trySendCtx(t *testing.T, ctx context.Context, client *http.Client, method, url string, hdr ...string) (answer, error) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader("payload")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	a := answer{
		status:          resp.StatusCode,
		retryAfter:      resp.Header.Get("Retry-After"),
		contentType:     resp.Header.Get("Content-Type"),
		rateLimit:       resp.Header.Get("RateLimit"),
		rateLimitPolicy: resp.Header.Get("RateLimit-Policy"),
		body:            string(b),
	}
	if a.contentType == "application/problem+json" {
		if err := json.Unmarshal(b, &a.problem); err != nil {
			t.Fatalf("%s %s: problem body %q: %v", method, url, b, err)
		}
	}
	return a, nil
}

// checkRefusal fails the test unless a is a refusal with status want, a
// Retry-After of at least one whole second and a problem+json body that
// names the same status.
func checkRefusal(t *testing.T, a answer, want int) {
	t.Helper()
	if a.status != want {
		t.Fatalf("status = %d, want %d (body %q)", a.status, want, a.body)
	}
	if a.contentType != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", a.contentType)
	}
	if a.problem.Status != want || a.problem.Title != http.StatusText(want) || a.problem.Type == "" {
		t.Errorf("problem = %+v, want status %d, title %q and a type", a.problem, want, http.StatusText(want))
	}
	if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", a.retryAfter)
	}
}

// checkQuotaHeaders fails the test unless a carries the RateLimit-Policy
// of a bucket called name with burst q refilling in w seconds, and a
// RateLimit header with no tokens left whose t matches Retry-After.
func checkQuotaHeaders(t *testing.T, a answer, name string, q, w int) {
	t.Helper()
	wantPolicy := strconv.Quote(name) + ";q=" + strconv.Itoa(q) + ";w=" + strconv.Itoa(w)
	if a.rateLimitPolicy != wantPolicy {
		t.Errorf("RateLimit-Policy = %q, want %q", a.rateLimitPolicy, wantPolicy)
	}
	wantLimit := strconv.Quote(name) + ";r=0;t=" + a.retryAfter
	if a.rateLimit != wantLimit {
		t.Errorf("RateLimit = %q, want %q (t = Retry-After)", a.rateLimit, wantLimit)
	}
}

// serve starts h on 127.0.0.1 for the test's duration.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// deadline is the bound of every call in these tests: far above what any
// of them needs, so that a hang fails instead of blocking the run.
const deadline = 30 * time.Second

func bounded(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}
