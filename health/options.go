package health

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// The defaults, and why:
//
//   - check timeout 1 s: Kubernetes' own probe timeout (timeoutSeconds) is
//     1 s; a check slower than the probe that asks for it is a failed check.
//   - minimum re-run interval 1 s: a storm of probes (several load
//     balancers, a kubelet, a curl loop) costs a dependency at most one
//     check a second, and an answer is never older than that.
//   - poll interval 1 s: what [Checker.Watch] (the gRPC bridge) runs at, so
//     a streaming Watch sees a change within about a second.
//   - drain delay 5 s: load balancers and kube-proxy take a few seconds to
//     see a readiness failure (or the endpoint's removal) and stop sending.
//   - drain timeout 20 s: the in-flight work's share of Kubernetes' default
//     30 s grace period, leaving room for the delay and the forced stop.
const (
	DefaultTimeout      = time.Second
	DefaultMinInterval  = time.Second
	DefaultPollInterval = time.Second
	DefaultDrainDelay   = 5 * time.Second
	DefaultDrainTimeout = 20 * time.Second
)

// Option configures a [Checker] ([New]) or one of its watchers
// ([Checker.Watch]; only [WithPollInterval] applies there). Nil options are
// ignored; when an option is given twice the last one wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	mp           metric.MeterProvider
	ctx          context.Context
	poll         time.Duration
	drainDelay   time.Duration
	drainTimeout time.Duration
}

func defaultOptions() options {
	return options{
		ctx:          context.Background(),
		poll:         DefaultPollInterval,
		drainDelay:   DefaultDrainDelay,
		drainTimeout: DefaultDrainTimeout,
	}
}

func (o *options) with(opts []Option) {
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
}

// WithMeterProvider sets where the Checker's metrics go; nil is ignored.
// Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithContext sets the Checker's lifetime: its background loops (checks
// with [WithInterval], watchers) stop when ctx ends, as they do on
// [Checker.Close], and the checks they run get ctx's values. A nil ctx is
// ignored. Default: context.Background(), so only Close stops them.
func WithContext(ctx context.Context) Option {
	return optionFunc(func(o *options) {
		if ctx != nil {
			o.ctx = ctx
		}
	})
}

// WithPollInterval sets how often a watcher ([Checker.Watch], and with it
// the gRPC bridge) re-evaluates. Given to [New] it is the default of every
// watcher; given to Watch, that watcher's. It panics when d ≤ 0.
// Default: [DefaultPollInterval], 1 s.
func WithPollInterval(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("health: WithPollInterval(%v): the interval must be positive", d))
	}
	return optionFunc(func(o *options) { o.poll = d })
}

// WithDrainDelay sets how long [Checker.Drain] keeps serving with readiness
// failing before it stops the servers, so that load balancers see the
// failure and stop sending. Zero stops at once; it panics when d < 0.
// Default: [DefaultDrainDelay], 5 s.
func WithDrainDelay(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("health: WithDrainDelay(%v): the delay must not be negative", d))
	}
	return optionFunc(func(o *options) { o.drainDelay = d })
}

// WithDrainTimeout sets how long [Checker.Drain] lets in-flight work finish
// (http.Server.Shutdown, grpc.Server.GracefulStop) before it forces the
// servers closed. Keep delay + timeout under the platform's grace period
// (Kubernetes: terminationGracePeriodSeconds, 30 s by default). It panics
// when d ≤ 0. Default: [DefaultDrainTimeout], 20 s.
func WithDrainTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("health: WithDrainTimeout(%v): the timeout must be positive", d))
	}
	return optionFunc(func(o *options) { o.drainTimeout = d })
}

// CheckOption configures one check at [Checker.Register]. Nil options are
// ignored; when an option is given twice the last one wins.
type CheckOption interface{ applyCheck(*checkOptions) }

type checkOptionFunc func(*checkOptions)

func (f checkOptionFunc) applyCheck(o *checkOptions) { f(o) }

type checkOptions struct {
	kinds         Kind
	critical      bool
	timeout       time.Duration
	interval      time.Duration
	minInterval   time.Duration
	componentType string
	groups        []string
}

func defaultCheckOptions() checkOptions {
	return checkOptions{
		kinds:         Readiness,
		critical:      true,
		timeout:       DefaultTimeout,
		minInterval:   DefaultMinInterval,
		componentType: "component",
	}
}

// WithKind sets which probes the check answers for: any combination of
// [Liveness], [Readiness] and [Startup] (Liveness|Readiness for both). It
// panics on zero or on bits outside the three. Default: Readiness.
//
// Liveness checks say whether the process must be restarted: give them
// only to what a restart fixes (a deadlock, a wedged event loop), never to
// a dependency — a database outage would restart every instance at once.
// Startup checks gate the start (a cache warmed, migrations applied); once
// they all pass, [Startup] stays passing for the life of the Checker.
func WithKind(k Kind) CheckOption {
	if k == 0 || k&^allKinds != 0 {
		panic(fmt.Sprintf("health: WithKind(%d): want a combination of Liveness, Readiness and Startup", k))
	}
	return checkOptionFunc(func(o *checkOptions) { o.kinds = k })
}

// WithCritical sets whether the check's failure fails its probes. A
// non-critical check ("warn") is run and reported — [StatusWarn] in the
// report, a [!] line in verbose output, "warn" in health+json — but its
// failure leaves the probe passing. Register a dependency whose outage this
// instance survives (a breaker's HealthCheck, an optional cache) this way:
// taking every instance out of rotation for a downstream outage turns a
// partial outage into a full one. Default: true.
func WithCritical(critical bool) CheckOption {
	return checkOptionFunc(func(o *checkOptions) { o.critical = critical })
}

// WithTimeout bounds one run of the check: its context ends after d, and a
// check still running then has failed with [ErrTimeout] — a hanging check
// never hangs a probe. It panics when d ≤ 0. Default: [DefaultTimeout],
// 1 s.
func WithTimeout(d time.Duration) CheckOption {
	if d <= 0 {
		panic(fmt.Sprintf("health: WithTimeout(%v): the timeout must be positive", d))
	}
	return checkOptionFunc(func(o *checkOptions) { o.timeout = d })
}

// WithInterval runs the check every d on a loop the Checker owns (stopped
// by [Checker.Close] or the Checker's context); probes read its last
// result and never wait for it, except for the very first run. Zero runs
// the check on demand, when a probe asks and its last result is older than
// the minimum interval ([WithMinInterval]). It panics when d < 0. Default:
// 0, on demand.
func WithInterval(d time.Duration) CheckOption {
	if d < 0 {
		panic(fmt.Sprintf("health: WithInterval(%v): the interval must not be negative", d))
	}
	return checkOptionFunc(func(o *checkOptions) { o.interval = d })
}

// WithMinInterval sets how long an on-demand result is reused: probes
// within d of the last run get its result, so a probe storm runs the check
// at most once per d. Concurrent probes always share one run. Zero re-runs
// on every probe that finds no run in flight. It panics when d < 0.
// Default: [DefaultMinInterval], 1 s.
func WithMinInterval(d time.Duration) CheckOption {
	if d < 0 {
		panic(fmt.Sprintf("health: WithMinInterval(%v): the interval must not be negative", d))
	}
	return checkOptionFunc(func(o *checkOptions) { o.minInterval = d })
}

// WithComponentType sets the componentType of the check in
// application/health+json answers: "component", "datastore" or "system" in
// draft-inadarei-api-health-check, or a URI of your own. Default:
// "component".
func WithComponentType(t string) CheckOption {
	return checkOptionFunc(func(o *checkOptions) { o.componentType = t })
}

// WithGroup puts a readiness check into named groups. The gRPC bridge
// (bulwarkgrpc.RegisterHealth) reports each group as a service of that name
// — the name of a gRPC service it gates, say "shop.v1.Checkout" — serving
// while the group's critical readiness checks pass. Group names must not be
// empty, "livez", "readyz" or "startupz" (it panics). Default: no group.
func WithGroup(names ...string) CheckOption {
	for _, n := range names {
		switch n {
		case "", "livez", "readyz", "startupz":
			panic(fmt.Sprintf("health: WithGroup(%q): the name is empty or reserved", n))
		}
	}
	groups := append([]string(nil), names...)
	return checkOptionFunc(func(o *checkOptions) { o.groups = groups })
}
