package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
)

// chargeHandler stands for a payment endpoint: it counts how many times
// its body ran for each Idempotency-Key.
type chargeHandler struct {
	mu   sync.Mutex
	runs map[string]int
}

func (h *chargeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	h.mu.Lock()
	h.runs[key]++
	h.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // the charge itself
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"ch_%s","status":"succeeded"}`, key)
}

// Idempotency sends every key several times, concurrently, to two
// instances that share one redis-server, and counts how often each key's
// charge ran (it must be once) and what the check added to the latency.
func Idempotency(ctx context.Context, o Options) Table {
	t := Table{
		Title:  "Idempotent duplicates across two instances",
		Header: []string{"set-up", "keys", "requests", "executions per key (max)", "keys executed ≠ 1", "201", "409 in flight", "other", "p50 of 201s (replays included)", "p99 of 201s"},
	}
	if o.RedisAddr == "" {
		t.Intro = "Skipped: no redis-server (pass -redis host:port, or put redis-server on PATH)."
		t.Rows = append(t.Rows, []string{"skipped", "–", "–", "–", "–", "–", "–", "–", "–", "–"})
		return t
	}
	keys, dup, rate := 300, 6, 400.0
	if o.Quick {
		keys = 60
	}
	t.Intro = fmt.Sprintf("Two HTTP instances, each with its own go-redis client and `bulwarkhttp.Idempotency(idempotency.NewRedisStore(…))`, "+
		"in front of a 5 ms charge handler; %d keys, each sent %d times alternately to both instances, with Poisson arrivals at %.0f req/s. "+
		"A duplicate that arrives while the first is running gets 409 (and its client would retry); one after it gets the stored 201. "+
		"The baseline row is the same handler without the middleware (every request runs).", keys, dup, rate)
	t.Rows = append(t.Rows, runIdem(ctx, o, "no idempotency (baseline)", false, keys, dup, rate))
	o.logf("idempotency: baseline: done")
	t.Rows = append(t.Rows, runIdem(ctx, o, "bulwark, Redis store, 2 instances", true, keys, dup, rate))
	o.logf("idempotency: redis: done")
	return t
}

func runIdem(ctx context.Context, o Options, name string, guarded bool, keys, dup int, rate float64) []string {
	h := &chargeHandler{runs: map[string]int{}}
	prefix := fmt.Sprintf("bench-%d:", time.Now().UnixNano()) // shared by both instances, fresh per run
	var urls []string
	for range 2 {
		var handler http.Handler = h
		if guarded {
			rc := redis.NewClient(&redis.Options{Addr: o.RedisAddr, ContextTimeoutEnabled: true, PoolSize: 64})
			defer rc.Close()
			store := idempotency.NewRedisStore(rc, idempotency.WithPrefix(prefix))
			handler = bulwarkhttp.Idempotency(store, idempotency.WithKeyRequired(true))(h)
		}
		url, stop := serve(handler)
		defer stop()
		urls = append(urls, url)
	}
	tr := newTransport()
	defer tr.CloseIdleConnections()
	client := newClient(tr)
	var mu sync.Mutex
	seq := 0
	samples := openLoop(ctx, rate, time.Duration(float64(keys*dup)/rate*float64(time.Second)), 2*time.Second, 23, nil,
		func(ctx context.Context, _ bulwark.Priority) (int, error) {
			mu.Lock()
			n := seq
			seq++
			mu.Unlock()
			// Interleave the keys so that duplicates overlap in time.
			key := fmt.Sprintf("k-%d", (n/2)%keys)
			url := urls[n%2]
			req, _ := http.NewRequestWithContext(ctx, "POST", url+"/charges", bytes.NewReader([]byte(`{"amount":100,"currency":"EUR"}`)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		})
	created, conflict, other := 0, 0, 0
	var lat []time.Duration
	for _, s := range samples {
		switch s.status {
		case http.StatusCreated:
			created++
			lat = append(lat, s.latency)
		case http.StatusConflict:
			conflict++
		default:
			other++
		}
	}
	h.mu.Lock()
	maxRuns, wrong := 0, 0
	for _, n := range h.runs {
		maxRuns = max(maxRuns, n)
		if n != 1 {
			wrong++
		}
	}
	used := len(h.runs)
	h.mu.Unlock()
	return []string{name, fmt.Sprint(used), fmt.Sprint(len(samples)), fmt.Sprint(maxRuns), fmt.Sprint(wrong),
		fmt.Sprint(created), fmt.Sprint(conflict), fmt.Sprint(other), ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99))}
}
