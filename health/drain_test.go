package health_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/health"
)

// fakeServer is a Server whose in-flight work takes busy to finish.
type fakeServer struct {
	busy     time.Duration
	shutErr  error
	closeErr error

	mu       sync.Mutex
	shutAt   time.Time
	closedAt time.Time
}

func (s *fakeServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutAt = time.Now()
	s.mu.Unlock()
	if s.shutErr != nil {
		return s.shutErr
	}
	t := time.NewTimer(s.busy)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *fakeServer) Close() error {
	s.mu.Lock()
	s.closedAt = time.Now()
	s.mu.Unlock()
	return s.closeErr
}

func (s *fakeServer) times() (shut, closed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutAt, s.closedAt
}

func TestDrainSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		c.Register("live", pass, health.WithKind(health.Liveness))
		c.Register("db", pass)
		quick := &fakeServer{busy: 3 * time.Second}
		start := time.Now()
		var hookAt []time.Duration
		c.OnShutdown(nil)
		c.OnShutdown(func() {
			if shut, _ := quick.times(); !shut.IsZero() {
				t.Error("OnShutdown ran after Shutdown")
			}
			hookAt = append(hookAt, time.Since(start))
		})
		var graceful bool
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			graceful, err = c.Drain(context.Background(), quick, nil)
		}()
		synctest.Wait()
		// Throughout the delay: readiness fails, liveness passes, the
		// servers are untouched.
		for range 5 {
			rep := c.Check(context.Background(), health.Readiness, "drain")
			if rep.Status != health.StatusFail || rep.Checks[0].Name != health.DrainCheck || !errors.Is(rep.Checks[0].Err, health.ErrDraining) {
				t.Fatalf("readiness while draining = %v %+v, want fail with the drain entry first (not excludable)", rep.Status, rep.Checks)
			}
			if rep := c.Check(context.Background(), health.Liveness); rep.Status != health.StatusPass {
				t.Fatalf("liveness while draining = %v, want pass", rep.Status)
			}
			if shut, _ := quick.times(); !shut.IsZero() {
				t.Fatalf("Shutdown called %v into the delay", shut.Sub(start))
			}
			if !c.Draining() {
				t.Fatal("Draining() = false")
			}
			time.Sleep(999 * time.Millisecond)
		}
		<-done
		shut, closed := quick.times()
		if shut.Sub(start) != health.DefaultDrainDelay {
			t.Errorf("Shutdown at %v, want after the %v delay", shut.Sub(start), health.DefaultDrainDelay)
		}
		if !closed.IsZero() || !graceful || err != nil {
			t.Errorf("Drain = %v, %v, closed %v; want graceful, nil, not forced", graceful, err, closed)
		}
		if len(hookAt) != 1 || hookAt[0] != health.DefaultDrainDelay {
			t.Errorf("OnShutdown ran at %v, want once at the end of the delay", hookAt)
		}
		if got := time.Since(start); got != 8*time.Second {
			t.Errorf("Drain took %v, want 5 s delay + 3 s of work", got)
		}
	})
}

func TestDrainForcesAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New(health.WithDrainDelay(time.Second), health.WithDrainTimeout(2*time.Second))
		defer c.Close()
		slow := &fakeServer{busy: time.Hour}
		quick := &fakeServer{busy: time.Second}
		start := time.Now()
		graceful, err := c.Drain(context.Background(), slow, quick)
		if graceful || err != nil {
			t.Errorf("Drain = %v, %v; want not graceful, nil", graceful, err)
		}
		if _, closed := slow.times(); closed.Sub(start) != 3*time.Second {
			t.Errorf("slow server forced at %v, want 1 s delay + 2 s timeout", closed.Sub(start))
		}
		if shut, closed := quick.times(); shut.Sub(start) != time.Second || !closed.IsZero() {
			t.Errorf("quick server: shut at %v, closed %v; want 1 s and never forced", shut.Sub(start), closed)
		}
	})
}

func TestDrainContextCutsShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New()
		defer c.Close()
		slow := &fakeServer{busy: time.Hour}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(2*time.Second, cancel)
		start := time.Now()
		graceful, _ := c.Drain(ctx, slow)
		shut, closed := slow.times()
		if graceful || shut.Sub(start) != 2*time.Second || closed.Sub(start) != 2*time.Second {
			t.Errorf("Drain cancelled at 2 s: graceful %v, shut at %v, forced at %v; want false, 2s, 2s", graceful, shut.Sub(start), closed.Sub(start))
		}
	})
}

func TestDrainErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New(health.WithDrainDelay(0), health.WithDrainTimeout(time.Second))
		defer c.Close()
		errShut, errClose := errors.New("shutdown failed"), errors.New("close failed")
		broken := &fakeServer{shutErr: errShut}
		stuck := &fakeServer{busy: time.Hour, closeErr: errClose}
		graceful, err := c.Drain(context.Background(), broken, stuck)
		if graceful || !errors.Is(err, errShut) || !errors.Is(err, errClose) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain = %v, %v; want false and both errors, not the timeout", graceful, err)
		}
	})
}

// stopper is a gRPC-server-like value: GracefulStop waits for its work or
// for Stop.
type stopper struct {
	work    time.Duration
	stopped chan struct{}
	once    sync.Once
	stops   atomic.Int64
}

func (s *stopper) GracefulStop() {
	t := time.NewTimer(s.work)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stopped:
	}
}

func (s *stopper) Stop() {
	s.stops.Add(1)
	s.once.Do(func() { close(s.stopped) })
}

func TestGracefulStopper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.New(health.WithDrainDelay(0), health.WithDrainTimeout(5*time.Second))
		defer c.Close()
		quick := &stopper{work: time.Second, stopped: make(chan struct{})}
		slow := &stopper{work: time.Hour, stopped: make(chan struct{})}
		start := time.Now()
		graceful, err := c.Drain(context.Background(), health.GracefulStopper(quick), health.GracefulStopper(slow))
		if graceful || err != nil || time.Since(start) != 5*time.Second {
			t.Errorf("Drain = %v, %v after %v; want false, nil after 5 s", graceful, err, time.Since(start))
		}
		if quick.stops.Load() != 0 || slow.stops.Load() == 0 {
			t.Errorf("Stop calls: quick %d, slow %d; want 0 and at least 1", quick.stops.Load(), slow.stops.Load())
		}
		if err := health.GracefulStopper(quick).Close(); err != nil || quick.stops.Load() != 1 {
			t.Errorf("Close() = %v, stops %d; want nil, 1", err, quick.stops.Load())
		}
	})
}

func TestOnDrain(t *testing.T) {
	c := newChecker(t)
	var order []string
	c.OnDrain(func() {
		if !c.Draining() {
			t.Error("OnDrain ran before Draining() was true")
		}
		if rep := c.Check(context.Background(), health.Readiness); rep.Status != health.StatusFail {
			t.Errorf("readiness in OnDrain = %v, want fail", rep.Status)
		}
		order = append(order, "a")
	})
	c.OnDrain(nil)
	c.OnDrain(func() { order = append(order, "b") })
	c.StartDrain()
	c.StartDrain()
	if !slices.Equal(order, []string{"a", "b"}) {
		t.Errorf("hooks ran %v, want [a b] once", order)
	}
	c.OnDrain(func() { order = append(order, "late") })
	if !slices.Equal(order, []string{"a", "b", "late"}) {
		t.Errorf("a hook registered after the drain started: %v, want it run at once", order)
	}
}
