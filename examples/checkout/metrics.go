package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// newMetrics installs an OpenTelemetry SDK meter provider whose reader is
// the Prometheus exporter, as the global provider every bulwark policy
// defaults to, and returns it with the /metrics handler. Names are as the
// exporter translates them: bulwark.breaker.state becomes
// bulwark_breaker_state, a counter gains _total, a unit a suffix
// (_seconds).
func newMetrics() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	otel.SetMeterProvider(mp)
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
