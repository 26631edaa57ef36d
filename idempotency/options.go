package idempotency

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// The defaults, and why:
//
//   - lease 30 s: long enough for a payment call, short enough that a
//     crashed owner's duplicate waits a little (Brandur Leach's Postgres
//     design locks for 90 s; AWS Powertools ties it to the invocation's
//     remaining time, as the Guard does with the request's deadline).
//   - retention 24 h: Stripe prunes keys after at least 24 h.
//   - store timeout 100 ms per call: a store slower than that is treated as
//     down rather than adding its latency to every request.
//   - 1 MiB request and response bodies: what an API answer reasonably is;
//     larger ones are refused (request) or sent but not stored (response).
const (
	DefaultLease            = 30 * time.Second
	DefaultRetention        = 24 * time.Hour
	DefaultStoreTimeout     = 100 * time.Millisecond
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxEntries       = 100_000
	DefaultMaxBytes         = 64 << 20
	DefaultPrefix           = "bulwark:idem:"
)

// Option configures a [Guard] (and through it the faces,
// bulwarkhttp.Idempotency and bulwarkgrpc.IdempotencyUnaryServerInterceptor).
// Nil options are ignored; when an option is given twice the last one wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	name          string
	mp            metric.MeterProvider
	required      bool
	scope         func(context.Context) string
	fingerprint   bool
	methods       []string
	maxRequest    int64
	maxResponse   int64
	lease         time.Duration
	retention     time.Duration
	timeout       time.Duration
	failOpen      bool
	storeServerEr bool
}

func newOptions(opts []Option) options {
	o := options{
		name:        "idempotency",
		fingerprint: true,
		maxRequest:  DefaultMaxRequestBytes,
		maxResponse: DefaultMaxResponseBytes,
		lease:       DefaultLease,
		retention:   DefaultRetention,
		timeout:     DefaultStoreTimeout,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithName sets the bulwark.policy.name of the Guard's metrics.
// Default: "idempotency".
func WithName(name string) Option {
	return optionFunc(func(o *options) {
		if name != "" {
			o.name = name
		}
	})
}

// WithKeyRequired makes the key required: a request the Guard applies to
// (see [WithMethods]) without one is refused with [ErrKeyRequired] (HTTP
// 400, gRPC INVALID_ARGUMENT). Default: false, a request without a key
// passes through untouched.
func WithKeyRequired(required bool) Option {
	return optionFunc(func(o *options) { o.required = required })
}

// WithScope sets the scope a key lives in: the stored key is a digest of
// the scope and the client's key, so one principal never receives
// another's response. scope reads the principal from the request's
// context (a user or API key your authentication put there). Default: a
// SHA-256 of the Authorization header (gRPC: the authorization metadata);
// without it, all anonymous callers share one scope.
func WithScope(scope func(ctx context.Context) string) Option {
	return optionFunc(func(o *options) {
		if scope != nil {
			o.scope = scope
		}
	})
}

// WithFingerprint turns the request fingerprint on or off. On, a key
// reused with another request (HTTP: method, path and body; gRPC: full
// method and the deterministic marshaling of the request) is refused with
// [ErrMismatch]; off, only the key is compared. Default: true.
func WithFingerprint(on bool) Option {
	return optionFunc(func(o *options) { o.fingerprint = on })
}

// WithMethods sets what the key applies to: HTTP request methods
// ("POST", "PUT"…) for bulwarkhttp, full method names
// ("/pkg.Service/Method") for bulwarkgrpc; a request to anything else
// passes through even with a key. Default: POST and PATCH on HTTP (the
// methods that are not idempotent by definition), every unary method on
// gRPC.
func WithMethods(methods ...string) Option {
	m := append([]string(nil), methods...)
	return optionFunc(func(o *options) { o.methods = m })
}

// WithMaxRequestBytes sets the largest request body (gRPC: marshaled
// request) that is fingerprinted; a larger one is refused with
// [ErrRequestTooLarge] (HTTP 413, gRPC INVALID_ARGUMENT). With
// fingerprints off the body is not read and not limited. n <= 0 keeps the
// default. Default: 1 MiB.
func WithMaxRequestBytes(n int64) Option {
	return optionFunc(func(o *options) {
		if n > 0 {
			o.maxRequest = n
		}
	})
}

// WithMaxResponseBytes sets the largest response body that is stored. A
// larger response goes to the first caller in full; duplicates get
// [ErrNotReplayable] and do not execute. n <= 0 keeps the default.
// Default: 1 MiB.
func WithMaxResponseBytes(n int64) Option {
	return optionFunc(func(o *options) {
		if n > 0 {
			o.maxResponse = n
		}
	})
}

// WithLease sets how long a claim holds a key while its request runs. The
// handler runs under a context whose deadline is the end of the lease
// (or the request's own deadline, if earlier): a claim is never taken over
// while a handler that honours its context runs. The store holds the claim
// for the lease plus two store timeouts, the time to complete it. d <= 0
// keeps the default. Default: 30 s.
func WithLease(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.lease = d
		}
	})
}

// WithRetention sets how long a completed record is replayed. d <= 0 keeps
// the default. Default: 24 h.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.retention = d
		}
	})
}

// WithStoreTimeout bounds every store call. A store that fails or does not
// answer in time is [ErrStoreUnavailable]. d <= 0 keeps the default.
// Default: 100 ms.
func WithStoreTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	})
}

// WithFailOpen executes requests when the store cannot be reached, without
// the exactly-once promise, rather than refusing them with
// [ErrStoreUnavailable]. Default: false (fail closed).
func WithFailOpen(on bool) Option {
	return optionFunc(func(o *options) { o.failOpen = on })
}

// WithStoreServerErrors stores server errors too, Stripe-style: HTTP 5xx
// except 503 (the status of refusals and overload, which says the work was
// not done), gRPC UNKNOWN, INTERNAL, UNIMPLEMENTED and DATA_LOSS. Default:
// false, a server error releases the key so a retry executes.
func WithStoreServerErrors(on bool) Option {
	return optionFunc(func(o *options) { o.storeServerEr = on })
}

// MeterOption is an option for a [Guard] and for a store.
type MeterOption interface {
	Option
	StoreOption
}

type meterOption struct{ mp metric.MeterProvider }

func (m meterOption) apply(o *options) {
	if m.mp != nil {
		o.mp = m.mp
	}
}

func (m meterOption) applyStore(o *storeOptions) {
	if m.mp != nil {
		o.mp = m.mp
	}
}

// WithMeterProvider sets the meter provider of a Guard's or a store's
// metrics; nil is ignored. Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) MeterOption { return meterOption{mp} }

// StoreOption configures [NewMemoryStore] or [NewRedisStore]. Nil options
// are ignored; when an option is given twice the last one wins.
type StoreOption interface{ applyStore(*storeOptions) }

type storeOptionFunc func(*storeOptions)

func (f storeOptionFunc) applyStore(o *storeOptions) { f(o) }

type storeOptions struct {
	mp         metric.MeterProvider
	maxEntries int
	maxBytes   int64
	prefix     string
}

func newStoreOptions(opts []StoreOption) storeOptions {
	o := storeOptions{maxEntries: DefaultMaxEntries, maxBytes: DefaultMaxBytes, prefix: DefaultPrefix}
	for _, opt := range opts {
		if opt != nil {
			opt.applyStore(&o)
		}
	}
	return o
}

// WithMaxEntries bounds the memory store's entries (claims and records).
// n <= 0 keeps the default. Default: 100 000.
func WithMaxEntries(n int) StoreOption {
	return storeOptionFunc(func(o *storeOptions) {
		if n > 0 {
			o.maxEntries = n
		}
	})
}

// WithMaxBytes bounds the memory store's bytes (keys and records, plus a
// fixed overhead per entry). n <= 0 keeps the default. Default: 64 MiB.
func WithMaxBytes(n int64) StoreOption {
	return storeOptionFunc(func(o *storeOptions) {
		if n > 0 {
			o.maxBytes = n
		}
	})
}

// WithPrefix sets the prefix of the Redis store's keys. Default:
// "bulwark:idem:".
func WithPrefix(prefix string) StoreOption {
	return storeOptionFunc(func(o *storeOptions) { o.prefix = prefix })
}
