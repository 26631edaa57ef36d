package bulwarkhttp

import (
	"github.com/bulwark-go/bulwark/internal/telemetry"
)

const (
	outcomeSuccess = telemetry.OutcomeSuccess
	outcomeFailure = telemetry.OutcomeFailure
	outcomeIgnored = telemetry.OutcomeIgnored
	outcomeRefused = telemetry.OutcomeRefused
)

// requestMetrics counts requests by outcome in atomics, exported through
// an observable counter.
type requestMetrics struct {
	counts *telemetry.Counters
}

type serverMetrics = requestMetrics

func newServerMetrics(o options) *serverMetrics {
	return newRequestMetrics(o, "bulwark.http.server.requests",
		"Requests served through the bulwarkhttp middleware, by outcome.")
}

func newClientMetrics(o options) *requestMetrics {
	return newRequestMetrics(o, "bulwark.http.client.requests",
		"Requests sent through the bulwarkhttp transport, by outcome.")
}

func newRequestMetrics(o options, instName, desc string) *requestMetrics {
	name := telemetry.KeyPolicyName.String(o.name)
	sets := make([]telemetry.Set, len(telemetry.Outcomes))
	for i, oc := range telemetry.Outcomes {
		sets[i] = telemetry.NewSet(name, telemetry.KeyOutcome.String(oc))
	}
	return &requestMetrics{counts: telemetry.ObservedCounters(
		telemetry.Meter(o.mp, "bulwarkhttp"), instName, desc, "{request}", sets...)}
}

// count adds one request with outcome oc.
func (m *requestMetrics) count(oc string) {
	switch oc {
	case outcomeSuccess:
		m.counts.Add(0, 1)
	case outcomeFailure:
		m.counts.Add(1, 1)
	case outcomeIgnored:
		m.counts.Add(2, 1)
	case outcomeRefused:
		m.counts.Add(3, 1)
	}
}
