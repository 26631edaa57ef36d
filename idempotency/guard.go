package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"time"
)

// Guard is the transport-neutral engine: it parses keys, scopes them,
// claims them in a [Store], and decides for each request whether to
// execute it, replay a stored response, or refuse it. The faces,
// bulwarkhttp.Idempotency and bulwarkgrpc.IdempotencyUnaryServerInterceptor,
// build one and map its answers to the wire; use a Guard directly only to
// write another face.
//
// A face calls [Guard.Key], then (when it returns a key) [Guard.Begin] with
// the request's fingerprint, and for a [Call] runs the handler under
// [Call.Context] and ends it with [Call.Complete] or [Call.Release] before
// the response ends, so that a duplicate sent right after the answer
// replays it.
//
// A Guard is safe for concurrent use. It starts no goroutine. The zero
// value is not usable: build one with [New].
type Guard struct {
	store Store
	local bool
	o     options
	m     *metrics
}

// New returns a Guard over store. It panics if store is nil.
func New(store Store, opts ...Option) *Guard {
	if store == nil {
		panic("idempotency: New: nil store")
	}
	o := newOptions(opts)
	_, isLocal := store.(local)
	return &Guard{store: store, local: isLocal, o: o, m: newMetrics(o)}
}

// Applies reports whether the key applies to method (an HTTP method or a
// gRPC full method name): one of [WithMethods], or of defaults when that
// option was not given (nil defaults: every method).
func (g *Guard) Applies(method string, defaults []string) bool {
	ms := g.o.methods
	if ms == nil {
		if defaults == nil {
			return true
		}
		ms = defaults
	}
	return slices.Contains(ms, method)
}

// Key parses the values of the key field (nil when the request has none).
// It returns "" and no error for a request without a key that may pass
// through, and an error wrapping [ErrKeyRequired] or [ErrInvalidKey]
// (counted as invalid) for one that must be refused.
func (g *Guard) Key(values []string) (string, error) {
	if len(values) == 0 {
		if g.o.required {
			g.m.count(resultInvalid)
			return "", ErrKeyRequired
		}
		return "", nil
	}
	k, err := ParseKey(values)
	if err != nil {
		g.m.count(resultInvalid)
	}
	return k, err
}

// Invalid counts a request refused by the face before [Guard.Begin] (a
// body too large to fingerprint) and returns err.
func (g *Guard) Invalid(err error) error {
	g.m.count(resultInvalid)
	return err
}

// Fingerprinted reports whether fingerprints are compared
// ([WithFingerprint]); when not, a face need not compute one.
func (g *Guard) Fingerprinted() bool { return g.o.fingerprint }

// MaxRequestBytes is [WithMaxRequestBytes].
func (g *Guard) MaxRequestBytes() int64 { return g.o.maxRequest }

// MaxResponseBytes is [WithMaxResponseBytes].
func (g *Guard) MaxResponseBytes() int64 { return g.o.maxResponse }

// StoresServerErrors is [WithStoreServerErrors].
func (g *Guard) StoresServerErrors() bool { return g.o.storeServerEr }

// Begin claims key in scope (the face's default scope, the raw credential,
// replaced by [WithScope]) for a request with fingerprint fp. It returns
// one of:
//
//   - a [Call]: execute the request, then complete or release the call;
//   - a [Record]: replay it, the request completed before;
//   - an error: refuse the request. It wraps [ErrInFlight] (with a retry
//     hint), [ErrMismatch], [ErrNotReplayable], [ErrStoreUnavailable]
//     (with a retry hint), or is ctx's error when the request's context
//     ended.
//
// With [WithFailOpen], a store failure returns a Call that executes
// without a claim.
func (g *Guard) Begin(ctx context.Context, key, scope string, fp Fingerprint) (*Call, *Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if g.o.scope != nil {
		scope = g.o.scope(ctx)
	}
	if !g.o.fingerprint {
		fp = Fingerprint{}
	}
	sk := storedKey(scope, key)
	if active, _ := ctx.Value(activeKey{}).(string); active == sk {
		// A Guard nested in one that already owns this key (the same
		// middleware stacked twice): the outer call is the one that
		// counts; this one passes through.
		return &Call{}, nil, nil
	}
	now := time.Now()
	window := g.o.lease
	if dl, ok := ctx.Deadline(); ok {
		if left := dl.Sub(now); left < window {
			window = left
		}
	}
	if window <= 0 {
		return nil, nil, context.DeadlineExceeded
	}
	var token Token
	_, _ = rand.Read(token[:])
	call := func() *Call { return &Call{g: g, key: sk, token: token, fp: fp, deadline: now.Add(window)} }

	sctx, cancel := g.storeContext(ctx)
	start := time.Now()
	cl, err := g.store.Claim(sctx, sk, token, fp, addSat(window, addSat(g.o.timeout, g.o.timeout)))
	cancel()
	g.m.storeDuration(start)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrStoreUnavailable) {
			// The caller went away while we waited: not the store's fault.
			return nil, nil, ctx.Err()
		}
		g.m.count(resultStoreError)
		if g.o.failOpen {
			c := call()
			c.g = nil // executes without a claim
			return c, nil, nil
		}
		return nil, nil, newStoreError(err)
	}
	switch cl.State {
	case Claimed:
		g.m.count(resultExecuted)
		return call(), nil, nil
	case InFlight:
		if cl.Fingerprint != fp {
			g.m.count(resultMismatch)
			return nil, nil, ErrMismatch
		}
		g.m.count(resultConflict)
		return nil, nil, inFlight
	case Done:
		rfp, rec, err := decodeRecord(cl.Record)
		if err != nil {
			g.m.count(resultStoreError)
			return nil, nil, newStoreError(err)
		}
		if rfp != fp {
			g.m.count(resultMismatch)
			return nil, nil, ErrMismatch
		}
		g.m.count(resultReplayed)
		if rec.Oversized {
			return nil, &rec, ErrNotReplayable
		}
		return nil, &rec, nil
	}
	g.m.count(resultStoreError)
	return nil, nil, newStoreError(errors.New("idempotency: store answered an unknown state"))
}

// storeContext bounds one store call by the store timeout. A local store
// never blocks and gets ctx itself; completion and release use a context
// without ctx's cancellation (see [Call.Complete]).
func (g *Guard) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.local {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, g.o.timeout)
}

// activeKey is the context key under which a Call's context carries the
// stored key it owns.
type activeKey struct{}

// addSat adds two non-negative durations, saturating at the largest.
func addSat(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// storedKey is the hex SHA-256 of the scope and the client's key,
// length-prefixed so that no two pairs collide.
func storedKey(scope, key string) string {
	var stack [512]byte
	b := stack[:0]
	b = binary.AppendUvarint(b, uint64(len(scope)))
	b = append(b, scope...)
	b = append(b, key...)
	sum := sha256.Sum256(b)
	var out [64]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// Call is one request that owns its key: run it, then end it with
// [Call.Complete] or [Call.Release], exactly once, before the response is
// sent in full. A Call from a failed-open store ([WithFailOpen]) owns
// nothing and both do nothing.
type Call struct {
	g        *Guard
	key      string
	token    Token
	fp       Fingerprint
	deadline time.Time
	ended    bool
}

// Deadline is the end of the call's lease: the handler must be done by
// then (the store holds the claim a little longer, to complete it).
func (c *Call) Deadline() time.Time { return c.deadline }

// Context returns ctx bounded by the call's [Call.Deadline], for the
// handler: a handler that honours its context never outlives its claim.
// It also marks the key as owned, so that a Guard nested inside (the same
// middleware stacked twice) passes the request through instead of
// answering its own outer call with a conflict.
func (c *Call) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.g == nil {
		return ctx, func() {}
	}
	ctx = context.WithValue(ctx, activeKey{}, c.key)
	if dl, ok := ctx.Deadline(); ok && !dl.After(c.deadline) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, c.deadline)
}

// Complete stores rec for the key, for duplicates to replay. A body larger
// than [WithMaxResponseBytes] is not stored: the record is marked
// oversized. It runs under the store timeout even when ctx was cancelled
// (a response that was produced is kept even if its client left). It
// returns [ErrNotOwner] when the claim was taken over meanwhile: the late
// completion is discarded. A store with no room for the record
// ([ErrStoreFull]) keeps it as oversized, so duplicates still do not
// execute again.
func (c *Call) Complete(ctx context.Context, rec *Record) error {
	if c.g == nil || c.ended {
		return nil
	}
	c.ended = true
	g := c.g
	r := *rec
	if int64(len(r.Body)) > g.o.maxResponse {
		r.Body, r.Oversized = nil, true
	}
	err := c.complete(ctx, encodeRecord(c.fp, &r))
	if errors.Is(err, ErrStoreFull) && !r.Oversized {
		r.Header, r.Body, r.Oversized = nil, nil, true
		err = c.complete(ctx, encodeRecord(c.fp, &r))
	}
	return err
}

func (c *Call) complete(ctx context.Context, b []byte) error {
	g := c.g
	sctx, cancel := g.storeContext(context.WithoutCancel(ctx))
	defer cancel()
	start := time.Now()
	err := g.store.Complete(sctx, c.key, c.token, b, g.o.retention)
	g.m.storeDuration(start)
	return err
}

// Release deletes the claim so that a retry executes: for a response that
// is not stored (a 5xx, a 429, a refusal), a handler that panicked, or a
// client that went away before anything was written. It runs under the
// store timeout even when ctx was cancelled.
func (c *Call) Release(ctx context.Context) error {
	if c.g == nil || c.ended {
		return nil
	}
	c.ended = true
	g := c.g
	sctx, cancel := g.storeContext(context.WithoutCancel(ctx))
	defer cancel()
	start := time.Now()
	err := g.store.Release(sctx, c.key, c.token)
	g.m.storeDuration(start)
	return err
}
