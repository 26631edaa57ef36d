package health

import (
	"context"
	"sync"
	"time"
)

// watcher is one Watch loop.
type watcher struct {
	f     func(context.Context)
	every time.Duration
	kickc chan struct{} // size 1: a pending wake-up
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Watch calls f on a goroutine the Checker owns: at once, then every poll
// interval ([WithPollInterval]; opts may set this watcher's own), and as
// soon as a check's status changes or a drain starts. f typically probes
// the Checker ([Checker.Check]) and publishes the answers somewhere — the
// gRPC bridge (bulwarkgrpc.RegisterHealth) sets the gRPC health service's
// statuses this way, which keeps them current even when no check has
// [WithInterval]. Calls of one watcher never overlap; f gets the
// Checker's context, which ends on Close.
//
// The loop ends on [Checker.Close], when the Checker's context ends, or
// when the returned stop is called; stop waits for a call of f in progress
// and must not be called from f. Watch on a closed Checker never calls f.
func (c *Checker) Watch(f func(ctx context.Context), opts ...Option) (stop func()) {
	if f == nil {
		panic("health: Watch(nil)")
	}
	o := c.opts
	o.with(opts)
	w := &watcher{f: f, every: o.poll, kickc: make(chan struct{}, 1), stopc: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		close(w.done)
		return func() {}
	}
	c.watchers = append(c.watchers, w)
	c.wg.Add(1)
	c.mu.Unlock()
	go c.watch(w)
	return func() {
		w.once.Do(func() { close(w.stopc) })
		<-w.done
		c.mu.Lock()
		for i, ww := range c.watchers {
			if ww == w {
				c.watchers = append(c.watchers[:i:i], c.watchers[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
	}
}

func (c *Checker) watch(w *watcher) {
	defer c.wg.Done()
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-w.stopc:
			return
		default:
		}
		w.f(c.ctx)
		select {
		case <-c.ctx.Done():
			return
		case <-w.stopc:
			return
		case <-t.C:
		case <-w.kickc:
		}
	}
}

// kick wakes every watcher; a wake-up already pending absorbs this one.
func (c *Checker) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.watchers {
		select {
		case w.kickc <- struct{}{}:
		default:
		}
	}
}
