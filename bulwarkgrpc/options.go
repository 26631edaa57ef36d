package bulwarkgrpc

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
)

// Option configures the interceptors. Options that concern only one side
// (server or client) are ignored by the other.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	name      string
	mp        metric.MeterProvider
	trust     func(ctx context.Context) bool
	key       func(ctx context.Context, fullMethod string) string
	failures  codeSet
	propagate func(ctx context.Context, fullMethod string) bool
}

// codeSet is a set of status codes, one bit each.
type codeSet uint64

func (s codeSet) has(c codes.Code) bool { return c < 64 && s&(1<<c) != 0 }

func newCodeSet(cs ...codes.Code) codeSet {
	var s codeSet
	for _, c := range cs {
		if c < 64 {
			s |= 1 << c
		}
	}
	return s
}

// DefaultFailureCodes returns the status codes that count as failures
// unless [WithFailureCodes] says otherwise: Unavailable, DeadlineExceeded,
// Internal, Unknown and DataLoss.
func DefaultFailureCodes() []codes.Code {
	return []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss}
}

func newOptions(opts []Option) options {
	o := options{name: "bulwarkgrpc", failures: newCodeSet(DefaultFailureCodes()...)}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithName names the interceptor in its metrics (bulwark.policy.name).
// Default: "bulwarkgrpc".
func WithName(name string) Option {
	return optionFunc(func(o *options) { o.name = name })
}

// WithMeterProvider sets where the interceptor's metrics go; nil is
// ignored. Default: otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// WithTrustPriority marks the peers whose critical-plus tier is honoured
// (server side). trust receives the call's context, in which
// peer.FromContext gives the peer's address and credentials.AuthInfo (for
// example credentials.TLSInfo with the verified client certificate); it is
// asked only when a call claims critical-plus. An untrusted critical-plus
// becomes critical; lower tiers are always honoured. A nil trust is
// ignored. Default: no peer is trusted.
func WithTrustPriority(trust func(ctx context.Context) bool) Option {
	return optionFunc(func(o *options) {
		if trust != nil {
			o.trust = trust
		}
	})
}

// WithKeyFunc sets the partition key of each call (server side), for
// per-key policies: key receives the call's context (with its incoming
// metadata and peer) and the full method name ("/package.Service/Method").
// It must return a value from a bounded set (a tenant, a user), never
// something an anonymous caller can vary at will. A nil key is ignored.
// Default: no key ("").
func WithKeyFunc(key func(ctx context.Context, fullMethod string) string) Option {
	return optionFunc(func(o *options) {
		if key != nil {
			o.key = key
		}
	})
}

// WithFailureCodes sets the status codes that count as failures for the
// policies (both sides); any other code is a call that succeeded with an
// error answer. On the client, UNAVAILABLE and RESOURCE_EXHAUSTED are always
// passed to the policies, classified as [bulwark.ErrRemoteUnavailable] and
// [bulwark.ErrRemoteRejected], whatever this set says; and so is any error
// of an attempt whose context ended. Default: the codes of
// [DefaultFailureCodes] (Unavailable, DeadlineExceeded, Internal, Unknown,
// DataLoss).
func WithFailureCodes(cs ...codes.Code) Option {
	return optionFunc(func(o *options) { o.failures = newCodeSet(cs...) })
}

// WithPriorityPropagation decides, per call, whether the client sends the
// effective tier downstream as bulwark-priority: send receives the call's
// context and full method name. Pass a function returning false to never
// send it (to a third party, say). The attempt number is always sent. A
// nil send is ignored. Default: the tier is sent on every call.
func WithPriorityPropagation(send func(ctx context.Context, fullMethod string) bool) Option {
	return optionFunc(func(o *options) {
		if send != nil {
			o.propagate = send
		}
	})
}
