package bulwarkhttp_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/failover"
)

// region is a loopback server that answers with its name, and can be taken
// down (its listener closed) and revived on the same address.
type region struct {
	name  string
	addr  string
	mu    sync.Mutex
	srv   *http.Server
	calls atomic.Int64
	fail  atomic.Int32 // status to answer instead of 200, when set
}

func startRegion(t *testing.T, name string) *region {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &region{name: name, addr: l.Addr().String()}
	r.serve(l)
	t.Cleanup(r.down)
	return r
}

func (r *region) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		_, _ = io.Copy(io.Discard, req.Body)
		if s := r.fail.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		_, _ = io.WriteString(w, r.name+" "+req.Host+" "+req.URL.Path)
	})}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (r *region) url() string { return "http://" + r.addr }

// down closes the listener and every connection.
func (r *region) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// revive listens again on the same address.
func (r *region) revive(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	for range 100 {
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("revive %s on %s: %v", r.name, r.addr, err)
	}
	r.serve(l)
}

func TestFailoverTransportRegions(t *testing.T) {
	a, b, c := startRegion(t, "a"), startRegion(t, "b"), startRegion(t, "c")
	set := failover.New("regions", []string{a.url(), b.url(), c.url()},
		failover.WithBreakerOptions(breaker.WithConsecutiveFailures(3), breaker.WithBreakDuration(300*time.Millisecond)),
		failover.WithMinDwell(200*time.Millisecond))
	defer set.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: bulwarkhttp.FailoverTransport(set, tr), Timeout: 5 * time.Second}

	get := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://payments.invalid/v1/charge?x=1", nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if req.URL.Host != "payments.invalid" {
			t.Errorf("the caller's request was modified: host %q", req.URL.Host)
		}
		return string(body), nil
	}
	body, err := get()
	if err != nil || body != "a "+a.addr+" /v1/charge" {
		t.Fatalf("GET = %q, %v; want region a, with the Host header and path of the endpoint", body, err)
	}

	// Bounded load while the primary's listener closes.
	const workers = 4
	var failed, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(); err != nil {
					failed.Add(1)
				} else {
					served.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	a.down()
	deadline := time.Now().Add(3 * time.Second)
	for set.Status().Active != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	bBefore := b.calls.Load()
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if st := set.Status(); st.Active != 1 {
		t.Fatalf("Status() = %+v after the primary went down, want traffic on b", st)
	}
	if b.calls.Load() == bBefore {
		t.Error("b served nothing after the cut-over")
	}
	// The breaker trips after 3 consecutive failures; calls already in
	// flight on the other workers may fail too.
	if f := failed.Load(); f > 3+workers {
		t.Errorf("failed calls = %d (of %d), want at most %d (the breaker's threshold plus calls in flight)", f, failed.Load()+served.Load(), 3+workers)
	}
	if c.calls.Load() != 0 {
		t.Errorf("c served %d calls, want none while b is healthy", c.calls.Load())
	}

	// The primary comes back: after its break and the dwell, traffic
	// returns to it.
	a.revive(t)
	aBefore := a.calls.Load()
	deadline = time.Now().Add(5 * time.Second)
	for set.Status().Active != 0 && time.Now().Before(deadline) {
		if _, err := get(); err != nil {
			t.Fatalf("GET during fail-back = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if set.Status().Active != 0 || a.calls.Load() == aBefore {
		t.Fatalf("Status() = %+v, a served %d more; want fail-back to a", set.Status(), a.calls.Load()-aBefore)
	}
	if body, err := get(); err != nil || !strings.HasPrefix(body, "a ") {
		t.Errorf("GET after fail-back = %q, %v; want region a", body, err)
	}
}

func TestFailoverTransportRetryOnNextReplayableOnly(t *testing.T) {
	a, b := startRegion(t, "a"), startRegion(t, "b")
	a.fail.Store(http.StatusServiceUnavailable)
	set := failover.New("regions", []string{a.url(), b.url() + "/api/"}, failover.WithRetryOnNext())
	defer set.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: bulwarkhttp.FailoverTransport(set, tr)}

	for _, tt := range []struct {
		name      string
		key       string
		wantB     int64
		wantError bool
	}{
		{"POST without a key is not replayed", "", 0, true},
		{"POST with an Idempotency-Key is", "k-1", 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a.calls.Store(0)
			b.calls.Store(0)
			req, _ := http.NewRequest("POST", "http://payments.invalid/charge", strings.NewReader(`{"amount":1}`))
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			resp, err := client.Do(req)
			var body string
			if err == nil {
				bb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(bb)
			}
			if a.calls.Load() != 1 || b.calls.Load() != tt.wantB {
				t.Errorf("calls a=%d b=%d, want a=1 b=%d", a.calls.Load(), b.calls.Load(), tt.wantB)
			}
			if tt.wantError {
				if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("POST = %d, want the primary's 503 (not replayed)", resp.StatusCode)
				}
				return
			}
			if err != nil || !strings.HasPrefix(body, "b ") || !strings.HasSuffix(body, " /api/charge") {
				t.Errorf("POST = %q, %v; want region b's answer under its /api prefix", body, err)
			}
		})
	}
}

func TestFailoverTransportAllDown(t *testing.T) {
	a := startRegion(t, "a")
	set := failover.New("regions", []string{a.url()},
		failover.WithBreakerOptions(breaker.WithConsecutiveFailures(1), breaker.WithBreakDuration(time.Minute)))
	defer set.Close()
	a.down()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: bulwarkhttp.FailoverTransport(set, tr)}
	_, err := client.Get("http://x.invalid/")
	if !errors.Is(err, bulwark.ErrRemoteUnavailable) {
		t.Fatalf("first GET = %v, want the unreachable downstream", err)
	}
	_, err = client.Get("http://x.invalid/")
	if !errors.Is(err, failover.ErrNoEndpoint) {
		t.Fatalf("second GET = %v, want ErrNoEndpoint", err)
	}
	if d, ok := bulwark.RetryAfter(err); !ok || d <= 0 || d > time.Minute {
		t.Errorf("RetryAfter = %v, %v; want the breaker's remaining break", d, ok)
	}
}

func TestFailoverTransportPanics(t *testing.T) {
	for _, eps := range [][]string{{"not a url"}, {"ftp://x"}, {"/relative"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FailoverTransport(%q) did not panic", eps)
				}
			}()
			set := failover.New("x", eps)
			defer set.Close()
			bulwarkhttp.FailoverTransport(set, nil)
		}()
	}
}
