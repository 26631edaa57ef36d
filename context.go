package bulwark

import (
	"context"
	"sync"
	"time"
)

// CallInfo is what bulwark keeps about a call in its context: the effective
// priority tier, the partition key, the attempt number and where to report
// rate-limit quotas. The adapters set it once per request, in one context
// value; policies read it with one lookup ([CallInfoFrom]).
type CallInfo struct {
	// Priority is the effective tier (after the adapters' trust check).
	Priority Priority
	// PrioritySet reports that someone chose Priority, so that Critical,
	// the zero value, can be told from no tier at all
	// ([LookupPriority]). A Priority other than Critical counts as set
	// whatever PrioritySet says; [WithPriority] sets it; [WithKey] and
	// [WithAttempt] keep it as they find it, so a key alone sets no
	// tier.
	PrioritySet bool
	// Key partitions per-key policies (a tenant, a user, a host); "" is
	// no key.
	Key string
	// Attempt is the 1-based attempt number set by a retrying policy; 0
	// means the first attempt.
	Attempt int
	// Quota, when set, receives the quota of every rate limit that
	// admitted the call, for the RateLimit headers of admitted responses.
	Quota *QuotaRecorder
}

type infoCtx struct {
	context.Context
	info CallInfo
}

type infoKey struct{}

func (c *infoCtx) Value(key any) any {
	if key == (infoKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithCallInfo returns a copy of ctx carrying info, in one allocation.
func WithCallInfo(ctx context.Context, info CallInfo) context.Context {
	return &infoCtx{Context: ctx, info: info}
}

// CallContext is the context [WithCallInfo] returns, as a type an adapter
// can allocate inside a larger per-request object, so that the request's
// state and its context cost one allocation. Set it with [CallContext.Init]
// and use its address as the context; the zero value is not a usable
// context. Like any context, it must not be reused while anything may
// still hold it.
type CallContext struct {
	infoCtx
}

// Init makes c a copy of parent carrying info.
func (c *CallContext) Init(parent context.Context, info CallInfo) {
	c.infoCtx = infoCtx{Context: parent, info: info}
}

// CallInfoFrom returns the CallInfo in ctx, or the zero CallInfo (Critical,
// no key, first attempt). It allocates nothing.
func CallInfoFrom(ctx context.Context) CallInfo {
	if c, ok := ctx.Value(infoKey{}).(*infoCtx); ok {
		return c.info
	}
	return CallInfo{}
}

// WithPriority returns a copy of ctx whose effective tier is p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	info := CallInfoFrom(ctx)
	info.Priority, info.PrioritySet = p, true
	return WithCallInfo(ctx, info)
}

// PriorityFrom returns the effective tier in ctx; [Critical] when none was
// set.
func PriorityFrom(ctx context.Context) Priority { return CallInfoFrom(ctx).Priority }

// LookupPriority returns the effective tier in ctx and whether one was set
// ([CallInfo.PrioritySet], or a tier other than Critical). It tells "no
// tier" from Critical: the adapters let a request's header only lower a
// tier already set, and keep a hand-set outgoing header when none was.
// It allocates nothing.
func LookupPriority(ctx context.Context) (Priority, bool) {
	info := CallInfoFrom(ctx)
	return info.Priority, info.HasPriority()
}

// HasPriority reports whether info's tier was set: PrioritySet, or a
// Priority other than Critical.
func (info CallInfo) HasPriority() bool {
	return info.PrioritySet || info.Priority != Critical
}

// WithKey returns a copy of ctx whose partition key is key. It sets no
// tier: [LookupPriority] reports one only if ctx already had it.
func WithKey(ctx context.Context, key string) context.Context {
	info := CallInfoFrom(ctx)
	info.Key = key
	return WithCallInfo(ctx, info)
}

// KeyFrom returns the partition key in ctx, or "" when none was set. Its
// signature fits the key-function options of per-key policies, whose
// default it is.
func KeyFrom(ctx context.Context) string { return CallInfoFrom(ctx).Key }

// WithAttempt returns a copy of ctx whose attempt number is n (1-based).
// Retrying policies set it on every attempt after the first; transport
// adapters send it downstream (Bulwark-Attempt).
func WithAttempt(ctx context.Context, n int) context.Context {
	info := CallInfoFrom(ctx)
	info.Attempt = n
	return WithCallInfo(ctx, info)
}

// AttemptFrom returns the 1-based attempt number in ctx; 1 when none was set.
func AttemptFrom(ctx context.Context) int {
	if n := CallInfoFrom(ctx).Attempt; n > 1 {
		return n
	}
	return 1
}

// Quota is the state of a rate limit as the RateLimit and RateLimit-Policy
// headers (draft-ietf-httpapi-ratelimit-headers) carry it.
type Quota struct {
	Name      string        // the policy's name, quoted in the headers
	Limit     int64         // q: the quota (a token bucket's burst)
	Window    time.Duration // w: the window the quota refills over
	Remaining int64         // r: what this caller may still take now
	Reset     time.Duration // t: until this caller may take one more
}

// QuotaFrom returns the quota err carries: the first error in its wrap chain
// that implements interface{ Quota() Quota }. Rate limiters' refusals do.
func QuotaFrom(err error) (Quota, bool) {
	q, ok := find[interface{ Quota() Quota }](err)
	if !ok {
		return Quota{}, false
	}
	return q.Quota(), true
}

// QuotaRecorder collects the quota of the rate limits that admitted a call;
// when several did, the one with the least remaining is kept. The zero value
// is ready to use; it is safe for concurrent use.
type QuotaRecorder struct {
	mu  sync.Mutex
	q   Quota
	set bool
}

// Record offers q; it is kept when it is the first or leaves less remaining.
func (r *QuotaRecorder) Record(q Quota) {
	r.mu.Lock()
	if !r.set || q.Remaining < r.q.Remaining {
		r.q, r.set = q, true
	}
	r.mu.Unlock()
}

// Quota returns the kept quota, if any was recorded.
func (r *QuotaRecorder) Quota() (Quota, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.q, r.set
}
