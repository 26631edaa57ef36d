package bulwarkhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/failover"
)

// recorder is a base RoundTripper that records what would go on the wire
// and answers with the status its endpoint host is given.
type recorder struct {
	mu     sync.Mutex
	seen   []string // method URL host-header body
	status map[string]int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	u := *req.URL
	r.mu.Lock()
	r.seen = append(r.seen, req.Method+" "+u.String()+" host="+req.Host+" body="+string(body))
	st := r.status[req.URL.Host]
	r.mu.Unlock()
	if st == 0 {
		st = 200
	}
	return &http.Response{StatusCode: st, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// The request is rewritten to the endpoint: scheme, host (IPv6 too),
// path prefix with its escapes and the caller's, the caller's query and
// userinfo kept when the endpoint has none.
func TestFailoverTransportRewrite(t *testing.T) {
	for _, tt := range []struct {
		name, endpoint, give, want string
	}{
		{"host", "https://eu.example", "http://placeholder/charge?x=1", "GET https://eu.example/charge?x=1 host= body="},
		{"ipv6", "http://[::1]:8080", "http://placeholder/a", "GET http://[::1]:8080/a host= body="},
		{"prefix", "http://eu.example/api/", "http://placeholder/v1/charge", "GET http://eu.example/api/v1/charge host= body="},
		{"escaped request path", "http://eu.example/api", "http://placeholder/files/a%2Fb", "GET http://eu.example/api/files/a%2Fb host= body="},
		{"escaped endpoint path", "http://eu.example/t%2Fenant", "http://placeholder/x%2Fy", "GET http://eu.example/t%2Fenant/x%2Fy host= body="},
		{"escaped endpoint, plain request", "http://eu.example/t%2Fenant", "http://placeholder/x", "GET http://eu.example/t%2Fenant/x host= body="},
		{"endpoint userinfo", "http://svc:pw@eu.example", "http://placeholder/x", "GET http://svc:pw@eu.example/x host= body="},
		{"caller userinfo kept", "http://eu.example", "http://me:secret@placeholder/x", "GET http://me:secret@eu.example/x host= body="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set := failover.New("r", []string{tt.endpoint})
			defer set.Close()
			rec := &recorder{}
			client := &http.Client{Transport: bulwarkhttp.FailoverTransport(set, rec)}
			req, _ := http.NewRequest("GET", tt.give, nil)
			before := req.URL.String()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := rec.all(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
			if req.URL.String() != before || req.Host != "placeholder" {
				t.Errorf("caller's request changed to %s (Host %q)", req.URL, req.Host)
			}
		})
	}
}

// An endpoint with a query or a fragment has no meaning for a base URL:
// refused at construction rather than silently dropped.
func TestFailoverTransportEndpointQueryPanics(t *testing.T) {
	for _, ep := range []string{"http://eu.example/?key=1", "http://eu.example/#frag"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FailoverTransport(%q) did not panic", ep)
				}
			}()
			set := failover.New("x", []string{ep})
			defer set.Close()
			bulwarkhttp.FailoverTransport(set, nil)
		}()
	}
}

// Retry on next: a replayable POST reaches the next endpoint with its
// whole body, rewound; a POST that cannot be replayed is sent once; the
// caller's request is left as it was.
func TestFailoverTransportRetryBody(t *testing.T) {
	rec := &recorder{status: map[string]int{"a.example": 503}}
	set := failover.New("r", []string{"http://a.example", "http://b.example"}, failover.WithRetryOnNext())
	defer set.Close()
	client := &http.Client{Transport: bulwarkhttp.FailoverTransport(set, rec)}

	req, _ := http.NewRequest("POST", "http://placeholder/charge", strings.NewReader(`{"amount":1}`))
	req.Header.Set("Idempotency-Key", "k-1")
	hdr := req.Header.Clone()
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST = %v, %v; want 200 from b", resp, err)
	}
	resp.Body.Close()
	want := []string{
		`POST http://a.example/charge host= body={"amount":1}`,
		`POST http://b.example/charge host= body={"amount":1}`,
	}
	if got := rec.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(req.Header) != len(hdr) || req.Header.Get("Bulwark-Attempt") != "" || req.URL.Host != "placeholder" {
		t.Errorf("caller's request changed: %v %v", req.URL, req.Header)
	}

	rec2 := &recorder{status: map[string]int{"a.example": 503}}
	set2 := failover.New("r2", []string{"http://a.example", "http://b.example"}, failover.WithRetryOnNext())
	defer set2.Close()
	client2 := &http.Client{Transport: bulwarkhttp.FailoverTransport(set2, rec2)}
	// No GetBody: this body cannot be sent twice.
	req2 := &http.Request{Method: "POST", URL: mustURL("http://placeholder/charge"), Header: http.Header{"Idempotency-Key": {"k-2"}},
		Body: io.NopCloser(bytes.NewBufferString(`{"amount":2}`)), ContentLength: 12}
	resp2, err := client2.Do(req2)
	if err == nil {
		resp2.Body.Close()
	}
	if got := rec2.all(); len(got) != 1 {
		t.Errorf("a body that cannot be rewound was sent %d times: %q", len(got), got)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// Nested failover transports: each set routes by its own endpoint (the
// innermost in the context); a failure counts against both sets'
// endpoints that carried it.
func TestFailoverTransportNested(t *testing.T) {
	rec := &recorder{status: map[string]int{"b1.example": 503}}
	inner := failover.New("inner", []string{"http://b1.example", "http://b2.example"}, failover.WithRetryOnNext())
	defer inner.Close()
	outer := failover.New("outer", []string{"http://a1.example", "http://a2.example"})
	defer outer.Close()
	client := &http.Client{Transport: bulwarkhttp.FailoverTransport(outer, bulwarkhttp.FailoverTransport(inner, rec))}
	for range 2 {
		resp, err := client.Get("http://placeholder/x")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET = %v, %v; want 200", resp, err)
		}
		resp.Body.Close()
	}
	want := "GET http://b1.example/x host= body=\nGET http://b2.example/x host= body=\nGET http://b1.example/x host= body=\nGET http://b2.example/x host= body="
	if got := strings.Join(rec.all(), "\n"); got != want {
		t.Errorf("sent\n%s\nwant\n%s", got, want)
	}
	if st := outer.Status(); st.Active != 0 {
		t.Errorf("outer active = %d, want 0 (the inner set absorbed the failure)", st.Active)
	}
}
