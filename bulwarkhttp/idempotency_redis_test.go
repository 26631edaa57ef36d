package bulwarkhttp_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// Two servers, each with its own Redis client, share one redis-server:
// 1000 concurrent duplicates spread over both run the handler once, and
// every answer is the first response or 409.
func TestIdempotencyRedisTwoServers(t *testing.T) {
	rs := redistest.Start(t)
	var runs atomic.Int64
	h := idemCreated()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		time.Sleep(5 * time.Millisecond) // keep the claim in flight a little
		h(w, r)
	})
	var servers [2]*idemServer
	for i := range servers {
		c := rs.Client()
		// Duplicates wait on the shared server; allow a loaded machine its
		// scheduling delays rather than testing Redis's latency.
		s := &idemServer{}
		s.srv = newIdemLoopback(t, bulwarkhttp.Idempotency(idempotency.NewRedisStore(c),
			idempotency.WithStoreTimeout(2*time.Second))(counted))
		s.c = s.srv.Client()
		s.c.Transport.(*http.Transport).MaxIdleConnsPerHost = 32
		servers[i] = s
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		bodies   = map[string]int{}
		sem      = make(chan struct{}, 64)
	)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := servers[i%2].send(context.Background(), idemReq{key: "pay-1", body: "pay"})
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
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times across two servers, want 1", n)
	}
	if statuses[201]+statuses[409] != 1000 || len(bodies) != 1 {
		t.Fatalf("statuses %v, bodies %v; want only the first response (one body) or 409", statuses, bodies)
	}
	t.Logf("statuses %v", statuses)
}

// Redis down: 503 within the store timeout (fail closed), or the handler
// runs (fail open); after a restart, keys work again.
func TestIdempotencyRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	c := rs.Client()
	closed := newIdemServer(t, idempotency.NewRedisStore(c), idemCreated(), idempotency.WithStoreTimeout(100*time.Millisecond))
	open := newIdemServer(t, idempotency.NewRedisStore(c), idemCreated(), idempotency.WithStoreTimeout(100*time.Millisecond),
		idempotency.WithFailOpen(true))
	for _, tc := range []struct {
		name     string
		down, up func()
	}{
		{"paused", rs.Pause, rs.Resume},
		{"stopped", rs.Stop, rs.Restart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.down()
			r := closed.do(t, idemReq{key: "k-" + tc.name})
			wantIdemProblem(t, r, http.StatusServiceUnavailable)
			if r.header.Get("Retry-After") != "1" || closed.runs.Load() != 0 {
				t.Fatalf("fail closed: Retry-After %q, runs %d; want 1 and the handler not run", r.header.Get("Retry-After"), closed.runs.Load())
			}
			before := open.runs.Load()
			if r := open.do(t, idemReq{key: "k-" + tc.name}); r.status != 201 || open.runs.Load() != before+1 {
				t.Fatalf("fail open = %d, want the handler's 201", r.status)
			}
			tc.up()
		})
	}
	var r idemResp
	for range 20 { // the pool may hold connections to the stopped server
		if r = closed.do(t, idemReq{key: "after"}); r.status == 201 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.status != 201 {
		t.Fatalf("after restart = %d, want 201", r.status)
	}
	if r := closed.do(t, idemReq{key: "after"}); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after restart = %d %v", r.status, r.header)
	}
}
