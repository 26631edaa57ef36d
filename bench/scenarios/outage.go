package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	fsbreaker "github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

type outageClient struct {
	name    string
	rt      func(base http.RoundTripper) http.RoundTripper
	refused func(error) bool // a local refusal by the client's breaker
}

var outageClients = []outageClient{
	{"no breaker", func(base http.RoundTripper) http.RoundTripper {
		return bulwarkhttp.Transport(bulwark.Chain(), base)
	}, func(error) bool { return false }},
	{"bulwark breaker", func(base http.RoundTripper) http.RoundTripper {
		b := breaker.New("provider", breaker.WithFailureRatio(0.5), breaker.WithMinCalls(20),
			breaker.WithWindow(5*time.Second, 10), breaker.WithBreakDuration(time.Second))
		return bulwarkhttp.Transport(b, base)
	}, func(err error) bool { return errors.Is(err, bulwark.ErrUnavailable) }},
	{"failsafe-go breaker", func(base http.RoundTripper) http.RoundTripper {
		cb := fsbreaker.NewBuilder[*http.Response]().HandleIf(failed5xx).
			WithFailureRateThreshold(0.5, 20, 5*time.Second).WithDelay(time.Second).Build()
		return failsafehttp.NewRoundTripper(base, cb)
	}, func(err error) bool { return errors.Is(err, fsbreaker.ErrOpen) }},
}

// Outage fails the provider for a span, then heals it, while clients call
// it at a steady rate through each breaker (and none).
func Outage(ctx context.Context, o Options) Table {
	rate := 200.0
	total, from, to := 16*time.Second, 3*time.Second, 13*time.Second
	if o.Quick {
		total, from, to = 4*time.Second, 1*time.Second, 3*time.Second
	}
	t := Table{
		Title: "Downstream outage",
		Intro: fmt.Sprintf("Clients call a provider at %.0f req/s (open loop) for %v; the provider answers 503 to every call from %v to %v, "+
			"then recovers. Breakers: failure ratio 50 %% over at least 20 calls in a 5 s window, 1 s break. "+
			"Time to open: from the outage's start to the first call refused locally. Time to recover: from the provider's recovery to the first success.",
			rate, total, from, to),
		Header: []string{"client", "time to open", "refusal latency p50", "time to recover", "calls reaching the failing provider", "client calls during the outage"},
	}
	for _, c := range outageClients {
		if ctx.Err() != nil {
			break
		}
		t.Rows = append(t.Rows, runOutage(ctx, c, rate, total, from, to))
		o.logf("outage: %s: done", c.name)
	}
	return t
}

func runOutage(ctx context.Context, c outageClient, rate float64, total, from, to time.Duration) []string {
	p := &provider{}
	url, stop := serve(p)
	defer stop()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	client := newClient(c.rt(tr))
	timer1 := time.AfterFunc(from, func() { p.down.Store(true) })
	timer2 := time.AfterFunc(to, func() { p.down.Store(false) })
	defer timer1.Stop()
	defer timer2.Stop()
	samples := openLoop(ctx, rate, total, time.Second, 7, nil, func(ctx context.Context, _ bulwark.Priority) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/pay", nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	open, recover := time.Duration(-1), time.Duration(-1)
	var refusalLat []time.Duration
	during := 0
	for _, s := range samples {
		if s.at >= from && s.at < to {
			during++
		}
		refused := s.err != nil && c.refused(s.err)
		if refused {
			refusalLat = append(refusalLat, s.latency)
			if open < 0 && s.at >= from {
				open = s.at - from
			}
		}
		if recover < 0 && s.at >= to && s.err == nil && s.status == http.StatusOK {
			recover = s.at - to
		}
	}
	dur := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return ms(max(d, time.Microsecond))
	}
	refLat := "–"
	if len(refusalLat) > 0 {
		refLat = fmt.Sprintf("%.0f µs", float64(quantile(refusalLat, 0.5))/float64(time.Microsecond))
	}
	return []string{c.name, dur(open), refLat, dur(recover), fmt.Sprint(p.downCalls.Load()), fmt.Sprint(during)}
}
