package bulwark

import (
	"context"
	"sync"
)

// Get runs fn under p and returns its value. It is safe under a hedging
// policy that calls fn on several goroutines: the first successful value
// wins, and values produced later are dropped. Use [GetDiscard] when a
// dropped value holds a resource (a response body, a connection).
func Get[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error)) (T, error) {
	return GetDiscard(ctx, p, fn, nil)
}

// GetDiscard is [Get] with a hook that receives every successful value that
// is not returned: later successes under a hedging policy, successes that
// arrive after Do returned, and a success that p turned into an error.
// discard may be nil.
func GetDiscard[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error), discard func(T)) (T, error) {
	var (
		mu   sync.Mutex
		val  T
		have bool
		done bool // Do returned: later values are discarded
	)
	err := p.Do(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		if have || done {
			mu.Unlock()
			if discard != nil {
				discard(v)
			}
			return nil
		}
		val, have = v, true
		mu.Unlock()
		return nil
	})
	mu.Lock()
	done = true
	v, ok := val, have
	var zero T
	val = zero
	mu.Unlock()
	if err != nil {
		if ok && discard != nil {
			discard(v)
		}
		return zero, err
	}
	return v, nil
}
