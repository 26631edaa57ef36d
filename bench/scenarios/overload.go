package scenarios

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"golang.org/x/time/rate"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/degrade"
	"github.com/bulwark-go/bulwark/ratelimit"
)

// service is the overloaded server: a fixed number of workers, each
// request holding one for a fixed service time (a sleep, so that the load
// generator on the same 2 cores is not the bottleneck). Like most real
// servers it does the work of a request whose client has gone.
type service struct {
	workers chan struct{}
	stop    chan struct{}
	work    time.Duration
}

func newService(workers int, work time.Duration) *service {
	return &service{workers: make(chan struct{}, workers), stop: make(chan struct{}), work: work}
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.workers <- struct{}{}:
	case <-s.stop:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	t := time.NewTimer(s.work)
	select {
	case <-t.C:
	case <-s.stop:
		t.Stop()
	}
	<-s.workers
	w.WriteHeader(http.StatusOK)
}

// serve starts h on a loopback listener; the returned func stops it.
func serve(h http.Handler) (url string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }
}

// A protection is one way to defend the service.
type protection struct {
	name string
	wrap func(h http.Handler, workers int, work time.Duration, capacity float64) (http.Handler, func())
}

// Shedders can be added by other files (the degrade shedder).
var protections = []protection{
	{"unprotected", func(h http.Handler, _ int, _ time.Duration, _ float64) (http.Handler, func()) {
		return h, func() {}
	}},
	{"bulwark: tiered limiter + bulkhead", func(h http.Handler, workers int, work time.Duration, capacity float64) (http.Handler, func()) {
		// The limiter admits at the capacity, lower tiers first to go
		// (each tier leaves a reserve of the burst to the tiers above:
		// Critical 40 %, SheddablePlus 60 %, Sheddable 80 %); the
		// compartment's priority queue absorbs the arrivals' jitter.
		lim := ratelimit.New("edge", rate.Limit(capacity), workers*4,
			ratelimit.WithReserve(bulwark.Critical, 0.4), ratelimit.WithReserve(bulwark.SheddablePlus, 0.6),
			ratelimit.WithReserve(bulwark.Sheddable, 0.8))
		pool := bulkhead.New("workers", workers, bulkhead.WithMaxQueue(workers*4), bulkhead.WithMaxWait(3*work))
		mw := bulwarkhttp.Middleware(bulwark.Chain(lim, pool),
			bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true }))
		return mw(h), func() {}
	}},
	{"bulwark: shedder on a trigger + bulkhead", func(h http.Handler, workers int, work time.Duration, _ float64) (http.Handler, func()) {
		// Shed levels follow the load at the edge (requests inside, as a
		// multiple of the workers): Sheddable goes at 1×, SheddablePlus at
		// 1.5×, Critical at 2×; CriticalPlus is never shed by a level.
		var inside atomic.Int64
		load := func() float64 { return float64(inside.Load()) / float64(workers) }
		shed := degrade.NewShedder("edge", degrade.WithTrigger(degrade.LevelsAbove(load, []float64{1, 1.5, 2},
			degrade.WithInterval(5*time.Millisecond), degrade.WithHold(50*time.Millisecond))))
		pool := bulkhead.New("workers", workers, bulkhead.WithMaxQueue(workers*4), bulkhead.WithMaxWait(3*work))
		mw := bulwarkhttp.Middleware(bulwark.Chain(shed, pool),
			bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true }))(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inside.Add(1)
			defer inside.Add(-1)
			mw.ServeHTTP(w, r)
		}), func() {}
	}},
	{"failsafe-go: adaptive limiter", func(h http.Handler, workers int, work time.Duration, _ float64) (http.Handler, func()) {
		al := adaptivelimiter.NewBuilder[*http.Response]().
			WithLimits(1, uint(workers*4), uint(workers)).
			WithQueueing(2, 3).
			WithMaxWaitTime(2 * work).
			Build()
		return failsafehttp.NewHandler(h, al), func() {}
	}},
}

// overloadResult is one protection at one offered load.
type overloadResult struct {
	protection string
	factor     float64
	offered    float64 // requests per second actually sent
	goodput    float64 // share of capacity answered 2xx within the deadline
	success    [bulwark.NumPriorities]float64
	p50, p99   time.Duration
}

// Overload offers 1×, 3× and 10× the service's capacity to each protection
// and reports goodput, success per tier and the latency of what was served.
func Overload(ctx context.Context, o Options) (Table, Chart) {
	const workers = 5
	work := 20 * time.Millisecond
	capacity := float64(workers) / work.Seconds() // 250 requests per second
	deadline := 250 * time.Millisecond
	d := 4 * time.Second
	if o.Quick {
		d = 1200 * time.Millisecond
	}
	factors := []float64{1, 3, 10}
	var results []overloadResult
	for _, p := range protections {
		for _, f := range factors {
			if ctx.Err() != nil {
				break
			}
			results = append(results, runOverload(ctx, p, f, workers, work, capacity, deadline, d))
			o.logf("overload: %s at %g×: done", p.name, f)
		}
	}
	t := Table{
		Title: "Overload by priority tier",
		Intro: fmt.Sprintf("A server of %d workers × %v service time (capacity %.0f req/s) behind each protection, offered 1×, 3× and 10× "+
			"its capacity by an open-loop generator (Poisson arrivals) for %v per run, with 10/60/20/10 %% CriticalPlus/Critical/SheddablePlus/Sheddable "+
			"and a client deadline of %v. Goodput: responses 2xx within the deadline per second, as a share of capacity. "+
			"Success per tier: 2xx within the deadline / offered. Latency: of the 2xx responses.", workers, work, capacity, d, deadline),
		Header: []string{"protection", "offered × capacity", "achieved req/s", "goodput", "CriticalPlus", "Critical", "SheddablePlus", "Sheddable", "p50", "p99"},
	}
	chart := Chart{Title: "Goodput vs offered load", XLabel: "offered load (× capacity)", YLabel: "goodput (share of capacity)", YMax: 1.2}
	byName := map[string]int{}
	for _, r := range results {
		t.Rows = append(t.Rows, []string{r.protection, trim(r.factor) + "×", fmt.Sprintf("%.0f", r.offered), pct(r.goodput),
			pct(r.success[bulwark.CriticalPlus.Index()]), pct(r.success[bulwark.Critical.Index()]),
			pct(r.success[bulwark.SheddablePlus.Index()]), pct(r.success[bulwark.Sheddable.Index()]),
			ms(r.p50), ms(r.p99)})
		i, ok := byName[r.protection]
		if !ok {
			i = len(chart.Series)
			byName[r.protection] = i
			chart.Series = append(chart.Series, Series{Name: r.protection})
		}
		chart.Series[i].Points = append(chart.Series[i].Points, [2]float64{r.factor, r.goodput})
	}
	t.Notes = append(t.Notes, "No adaptive bulkhead in bulwark yet: its row is missing, not hidden.")
	return t, chart
}

func runOverload(ctx context.Context, p protection, factor float64, workers int, work time.Duration, capacity float64, deadline, d time.Duration) overloadResult {
	svc := newService(workers, work)
	h, closeH := p.wrap(svc, workers, work, capacity)
	url, stop := serve(h)
	tr := newTransport()
	client := newClient(tr)
	samples := openLoop(ctx, factor*capacity, d, deadline, uint64(factor*1000), mix, func(ctx context.Context, tier bulwark.Priority) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/work", nil)
		req.Header.Set("Bulwark-Priority", tier.String())
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	close(svc.stop)
	stop()
	closeH()
	tr.CloseIdleConnections()

	r := overloadResult{protection: p.name, factor: factor, offered: float64(len(samples)) / d.Seconds()}
	var offered, good [bulwark.NumPriorities]int
	var lat []time.Duration
	total := 0
	for _, s := range samples {
		i := s.tier.Index()
		offered[i]++
		if s.status >= 200 && s.status < 300 && s.latency <= deadline {
			good[i]++
			total++
			lat = append(lat, s.latency)
		}
	}
	r.goodput = float64(total) / d.Seconds() / capacity
	for i := range offered {
		if offered[i] > 0 {
			r.success[i] = float64(good[i]) / float64(offered[i])
		}
	}
	r.p50, r.p99 = quantile(lat, 0.5), quantile(lat, 0.99)
	return r
}

func pct(f float64) string { return fmt.Sprintf("%.1f %%", f*100) }

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
