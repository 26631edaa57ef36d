package bulkhead_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// TestHTTPBurstServedByTier: a burst of mixed tiers over real HTTP against
// a one-slot compartment built to wait. bulwarkhttp.Handler uses Do, which
// now waits in the priority queue: critical-plus and critical arrivals
// evict the sheddable waiters (503 with Retry-After) and are served first.
func TestHTTPBurstServedByTier(t *testing.T) {
	b := bulkhead.New("api", 1, bulkhead.WithMaxQueue(6), bulkhead.WithMaxWait(time.Minute))
	gate := make(chan struct{})
	var mu sync.Mutex
	var served []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tier := r.Header.Get("Bulwark-Priority")
		if tier == "gate" {
			<-gate
			return
		}
		mu.Lock()
		served = append(served, tier)
		mu.Unlock()
	})
	srv := httptest.NewServer(bulwarkhttp.Handler(h, b,
		bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true })))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}

	type reply struct {
		tier       string
		status     int
		retryAfter string
	}
	replies := make(chan reply, 16)
	var wg sync.WaitGroup
	send := func(tier string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
			req.Header.Set("Bulwark-Priority", tier)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", tier, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			replies <- reply{tier, resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
	}
	// waitFor polls until cond holds, for at most 10 s of a loaded machine.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (in flight %d, queued %d)", what, b.InFlight(), b.Queued())
			}
		}
	}

	send("gate") // holds the one slot (an unknown tier is critical)
	waitFor("the gate request to hold the slot", func() bool { return b.InFlight() == 1 })
	for _, tier := range []string{"sheddable", "sheddable", "sheddable", "sheddable", "sheddable-plus", "sheddable-plus"} {
		send(tier)
	}
	waitFor("six queued", func() bool { return b.Queued() == 6 })
	for _, tier := range []string{"critical-plus", "critical", "critical-plus", "critical"} {
		send(tier) // each evicts the newest sheddable
	}
	var refused []reply
	for range 4 {
		r := <-replies
		refused = append(refused, r)
	}
	for _, r := range refused {
		if r.tier != "sheddable" || r.status != http.StatusServiceUnavailable {
			t.Errorf("refused %s with %d, want only sheddable requests refused, with 503", r.tier, r.status)
		}
	}
	if got := b.Queued(); got != 6 {
		t.Errorf("Queued() = %d, want 6", got)
	}
	close(gate)
	wg.Wait()
	close(replies)
	for r := range replies {
		if r.tier != "gate" && r.status != http.StatusOK {
			t.Errorf("%s answered %d, want 200", r.tier, r.status)
		}
	}
	want := []string{"critical-plus", "critical-plus", "critical", "critical", "sheddable-plus", "sheddable-plus"}
	if !slices.Equal(served, want) {
		t.Errorf("served in the order\n%s\nwant\n%s", strings.Join(served, " "), strings.Join(want, " "))
	}
	if b.InFlight() != 0 || b.Queued() != 0 {
		t.Errorf("InFlight() = %d, Queued() = %d at the end, want 0, 0", b.InFlight(), b.Queued())
	}
}
