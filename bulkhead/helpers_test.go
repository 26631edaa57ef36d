package bulkhead_test

import (
	"context"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulkhead"
)

// newQuiet returns a bulkhead whose metrics go nowhere.
func newQuiet(limit int, opts ...bulkhead.Option) *bulkhead.Bulkhead {
	return bulkhead.New("test", limit, append([]bulkhead.Option{bulkhead.WithMeterProvider(noop.NewMeterProvider())}, opts...)...)
}

func prioCtx(p bulwark.Priority) context.Context {
	return bulwark.WithPriority(context.Background(), p)
}

// result is what a queued caller ended with.
type result struct {
	id  int
	err error
}

// queueCaller starts a goroutine that acquires at tier p, reports to out
// when it is admitted or refused, and releases its permit when told to
// (release receives a value) or at once when release is nil.
func queueCaller(ctx context.Context, b *bulkhead.Bulkhead, id int, out chan<- result, release <-chan struct{}) {
	go func() {
		p, err := b.Acquire(ctx)
		out <- result{id, err}
		if err == nil {
			if release != nil {
				<-release
			}
			p.Release()
		}
	}()
}
