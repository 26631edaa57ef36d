package bulwarkhttp

import (
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark"
)

// Option configures [Middleware], [Handler] and [Transport]. Each option
// says which of them it applies to; the others ignore it. Nil options are
// ignored and the last of a kind wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	name          string
	mp            metric.MeterProvider
	trust         func(*http.Request) bool
	priorityFunc  func(*http.Request) bulwark.Priority
	keyFunc       func(*http.Request) string
	failure       func(status int) bool
	reject        func(http.ResponseWriter, *http.Request, error)
	exempt        func(*http.Request) bool
	rateLimitHdrs bool
	observer      func(*http.Request, Result)
	propagate     func(*http.Request) bool
}

func newOptions(defaultName string, opts []Option) options {
	o := options{name: defaultName}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithName names the middleware or transport in its metrics
// (bulwark.policy.name). Middleware, Handler and Transport.
// Default: "server" for Middleware and Handler, "client" for Transport.
func WithName(name string) Option {
	return optionFunc(func(o *options) { o.name = name })
}

// WithMeterProvider sets where metrics go; nil is ignored. Middleware,
// Handler and Transport. Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithTrustPriority marks the requests whose Bulwark-Priority header may
// raise their tier: for them "critical-plus" is honoured; for every other
// request it becomes "critical" (an untrusted peer may only lower its tier).
// Decide from something the peer cannot forge (mTLS identity, a network the
// request came from). Middleware and Handler. Default: no request is
// trusted.
func WithTrustPriority(trusted func(*http.Request) bool) Option {
	return optionFunc(func(o *options) { o.trust = trusted })
}

// WithPriorityFunc replaces the Bulwark-Priority header: f's result is the
// effective tier, without a trust check (f is the server's own judgement),
// even over a tier an outer layer put into the context.
// A result outside the four tiers is [bulwark.Critical]. Middleware and
// Handler. Default: the Bulwark-Priority header under the trust rule of
// [WithTrustPriority]; a missing or unparseable header is Critical.
func WithPriorityFunc(f func(*http.Request) bulwark.Priority) Option {
	return optionFunc(func(o *options) { o.priorityFunc = f })
}

// WithKeyFunc sets the partition key (a tenant, a user) that per-key
// policies read with [bulwark.KeyFrom]; "" is no key. Middleware and
// Handler. Default: no key (a key already in the request's context is
// kept).
func WithKeyFunc(f func(*http.Request) string) Option {
	return optionFunc(func(o *options) { o.keyFunc = f })
}

// WithFailureStatus decides which response statuses written by the handler
// are failures: the policies see an error for them (breakers count it)
// while the response goes out unchanged. Middleware and Handler.
// Default: status >= 500.
func WithFailureStatus(isFailure func(status int) bool) Option {
	return optionFunc(func(o *options) { o.failure = isFailure })
}

// WithRejectHandler replaces the response written when the policies refuse
// a request or fail before the handler ran, or when our own deadline ended
// the handler before it sent anything; it receives the policies'
// error. [WriteError] is the default and may be called from f. It is not
// called when the client went away. Middleware and Handler.
// Default: [WriteError].
func WithRejectHandler(f func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return optionFunc(func(o *options) { o.reject = f })
}

// WithExempt names requests served without the policies, such as
// long-lived streams that must not hold a permit or health checks.
// Middleware and Handler. Default: none.
func WithExempt(exempt func(*http.Request) bool) Option {
	return optionFunc(func(o *options) { o.exempt = exempt })
}

// WithRateLimitHeaders sends the RateLimit and RateLimit-Policy headers
// (draft-ietf-httpapi-ratelimit-headers) on admitted responses too: the
// middleware puts a [bulwark.QuotaRecorder] into the call's context, the
// rate limits that admit the request record their quota, and the headers
// are set before the handler runs (the handler may still change them).
// Refusals carrying a quota always get the headers. Middleware and Handler.
// Default: false.
func WithRateLimitHeaders(on bool) Option {
	return optionFunc(func(o *options) { o.rateLimitHdrs = on })
}

// WithObserver calls f once per request that went through the policies,
// after the response was written (or not: see [Result]), for logs.
// Middleware and Handler. Default: none.
func WithObserver(f func(r *http.Request, res Result)) Option {
	return optionFunc(func(o *options) { o.observer = f })
}

// WithPropagatePriority decides, per outgoing request, whether the
// effective tier of its context ([bulwark.PriorityFrom]) is sent in the
// Bulwark-Priority header; return false for destinations outside your
// system. Transport. Default: the tier is sent to every destination.
func WithPropagatePriority(propagate func(*http.Request) bool) Option {
	return optionFunc(func(o *options) { o.propagate = propagate })
}
