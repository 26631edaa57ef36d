package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"time"

	fsbudget "github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/retry"
)

type stormClient struct {
	name string
	rt   func(base http.RoundTripper) http.RoundTripper
}

func bulwarkRetry(opts ...retry.Option) *retry.Retrier {
	return retry.New(append([]retry.Option{retry.WithMaxAttempts(3), retry.WithInitialDelay(5 * time.Millisecond),
		retry.WithMaxDelay(20 * time.Millisecond)}, opts...)...)
}

func failsafeRetry(b fsbudget.Budget) fsretry.RetryPolicy[*http.Response] {
	rb := fsretry.NewBuilder[*http.Response]().HandleIf(failed5xx).WithMaxAttempts(3).
		WithBackoff(5*time.Millisecond, 20*time.Millisecond).ReturnLastFailure()
	if b != nil {
		rb = rb.WithBudget(b)
	}
	return rb.Build()
}

// stormClients can be extended by other files (the adaptive throttle).
var stormClients = []stormClient{
	{"no retry", func(base http.RoundTripper) http.RoundTripper { return bulwarkhttp.Transport(bulwark.Chain(), base) }},
	{"bulwark retry, no budget", func(base http.RoundTripper) http.RoundTripper {
		return bulwarkhttp.Transport(bulwarkRetry(), base)
	}},
	{"bulwark retry + budget", func(base http.RoundTripper) http.RoundTripper {
		return bulwarkhttp.Transport(bulwarkRetry(retry.WithBudget(retry.NewBudget())), base)
	}},
	{"bulwark retry + budget + adaptive throttle", func(base http.RoundTripper) http.RoundTripper {
		// The SRE client-side throttle inside the retries: once the
		// provider accepts nothing, calls are refused locally (not
		// retried: a local refusal is not retried by default).
		return bulwarkhttp.Transport(bulwark.Chain(bulwarkRetry(retry.WithBudget(retry.NewBudget())), breaker.NewAdaptive("provider")), base)
	}},
	{"failsafe-go retry, no budget", func(base http.RoundTripper) http.RoundTripper {
		return failsafehttp.NewRoundTripper(base, failsafeRetry(nil))
	}},
	{"failsafe-go retry + budget", func(base http.RoundTripper) http.RoundTripper {
		return failsafehttp.NewRoundTripper(base, failsafeRetry(fsbudget.New()))
	}},
}

// RetryStorm fails the provider for good and measures how many calls each
// retry set-up sends it per client call (amplification), at up to 3
// attempts per call.
func RetryStorm(ctx context.Context, o Options) (Table, Chart) {
	rate, d := 100.0, 8*time.Second
	if o.Quick {
		d = 1500 * time.Millisecond
	}
	t := Table{
		Title: "Retry storm",
		Intro: fmt.Sprintf("Clients call a provider that answers 503 to everything, at %.0f req/s (open loop) for %v, with at most 3 attempts "+
			"(5 ms initial backoff, 20 ms cap). Amplification: calls reaching the provider / client calls. Budgets at their defaults "+
			"(bulwark: 10 %% of calls plus a minimum rate; failsafe-go: 20 %% of in-flight executions, at least 3 concurrent).", rate, d),
		Header: []string{"client", "client calls", "provider calls", "amplification"},
	}
	chart := Chart{Title: "Retry amplification with the provider down", XLabel: "client", YLabel: "provider calls / client call", Bars: true, YMax: 3}
	for i, c := range stormClients {
		if ctx.Err() != nil {
			break
		}
		p := &provider{}
		p.down.Store(true)
		url, stop := serve(p)
		tr := newTransport()
		client := newClient(c.rt(tr))
		samples := openLoop(ctx, rate, d, 2*time.Second, 11, nil, func(ctx context.Context, _ bulwark.Priority) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/pay", nil)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		})
		stop()
		tr.CloseIdleConnections()
		amp := float64(p.calls.Load()) / float64(max(1, len(samples)))
		t.Rows = append(t.Rows, []string{c.name, fmt.Sprint(len(samples)), fmt.Sprint(p.calls.Load()), fmt.Sprintf("%.2f×", amp)})
		chart.XCategories = append(chart.XCategories, fmt.Sprint(i+1))
		chart.Series = append(chart.Series, Series{Name: fmt.Sprintf("%d %s", i+1, c.name), Points: [][2]float64{{float64(i), amp}}})
		o.logf("retry storm: %s: done", c.name)
	}
	return t, chart
}
