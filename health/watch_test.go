package health_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/health"
)

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New(health.WithPollInterval(10 * time.Second))
		defer c.Close()
		type box struct{ err error }
		var state atomic.Pointer[box]
		state.Store(&box{})
		c.Register("bg", func(context.Context) error { return state.Load().err }, health.WithInterval(time.Second))
		var calls atomic.Int64
		var last atomic.Int32
		stop := c.Watch(func(ctx context.Context) {
			calls.Add(1)
			last.Store(int32(c.Check(ctx, health.Readiness).Status))
		})
		synctest.Wait()
		if calls.Load() < 1 || health.Status(last.Load()) != health.StatusPass {
			t.Fatalf("at once: %d calls, last %v; want ≥ 1, pass", calls.Load(), health.Status(last.Load()))
		}
		n := calls.Load()
		time.Sleep(5 * time.Second)
		if calls.Load() != n {
			t.Errorf("calls without a change = %d, want %d until the poll", calls.Load(), n)
		}
		// A status change of a background check wakes the watcher within
		// the check's own interval, long before the poll.
		state.Store(&box{errBoom})
		time.Sleep(time.Second)
		synctest.Wait()
		if health.Status(last.Load()) != health.StatusFail {
			t.Errorf("1 s after the change: %v, want fail", health.Status(last.Load()))
		}
		n = calls.Load()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if calls.Load() <= n {
			t.Errorf("no call at the poll interval: %d, want > %d", calls.Load(), n)
		}
		// A drain wakes it too.
		n = calls.Load()
		c.StartDrain()
		synctest.Wait()
		if calls.Load() != n+1 {
			t.Errorf("calls after StartDrain = %d, want %d", calls.Load(), n+1)
		}
		stop()
		n = calls.Load()
		time.Sleep(time.Minute)
		if calls.Load() != n {
			t.Errorf("calls after stop = %d, want %d", calls.Load(), n)
		}
	})
}

func TestWatchOwnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		var a, b atomic.Int64
		c.Watch(func(context.Context) { a.Add(1) })
		c.Watch(func(context.Context) { b.Add(1) }, health.WithPollInterval(5*time.Second), nil)
		time.Sleep(10*time.Second - time.Millisecond)
		if a.Load() != 10 || b.Load() != 2 {
			t.Errorf("calls in 10 s: default %d, 5 s %d; want 10, 2", a.Load(), b.Load())
		}
		_ = c.Close() // stops both and waits
		n := a.Load() + b.Load()
		time.Sleep(time.Minute)
		if a.Load()+b.Load() != n {
			t.Error("watchers ran after Close")
		}
		var after atomic.Int64
		stop := c.Watch(func(context.Context) { after.Add(1) })
		stop()
		synctest.Wait()
		if after.Load() != 0 {
			t.Errorf("Watch after Close called f %d times, want 0", after.Load())
		}
	})
}
