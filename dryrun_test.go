package bulwark_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

func refuse(err error) bulwark.Policy {
	return bulwark.PolicyFunc(func(context.Context, func(context.Context) error) error { return err })
}

// wouldRefuse reads bulwark.dryrun.would_refuse of the dry run named
// "trial", by reason.
func wouldRefuse(r *metrictest.Reader) map[string]int64 {
	got := map[string]int64{}
	for _, reason := range []string{"rejected", "unavailable", "other"} {
		got[reason] = r.Int64("bulwark.dryrun.would_refuse")[metrictest.Key("bulwark.policy.name", "trial", "bulwark.reason", reason)]
	}
	return got
}

func TestDryRun(t *testing.T) {
	reader := metrictest.New(t)
	mp := reader.Provider

	t.Run("RefusingPolicyRunsFnOnce", func(t *testing.T) {
		p := bulwark.DryRun(refuse(bulwark.ErrUnavailable), bulwark.WithDryRunName("trial"), bulwark.WithDryRunMeterProvider(mp))
		calls := 0
		err := p.Do(context.Background(), func(context.Context) error { calls++; return nil })
		if err != nil || calls != 1 {
			t.Errorf("Do() = %v after %d calls, want nil after 1", err, calls)
		}
		if got := wouldRefuse(reader)["unavailable"]; got != 1 {
			t.Errorf("would_refuse{unavailable} = %d, want 1", got)
		}
	})

	t.Run("FailingFnRunsOnce", func(t *testing.T) {
		pass := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
		p := bulwark.DryRun(pass, bulwark.WithDryRunName("trial"), bulwark.WithDryRunMeterProvider(mp))
		// fn's own error has a refusal class: it must not be mistaken for
		// a refusal by p.
		want := bulwark.ErrRejected
		calls := 0
		err := p.Do(context.Background(), func(context.Context) error { calls++; return want })
		if err != want || calls != 1 {
			t.Errorf("Do() = %v after %d calls, want %v after 1", err, calls, want)
		}
		if got := wouldRefuse(reader)["rejected"]; got != 0 {
			t.Errorf("would_refuse{rejected} = %d, want 0", got)
		}
	})

	t.Run("CancelledCallerIsNotARefusal", func(t *testing.T) {
		p := bulwark.DryRun(refuse(errors.New("x")), bulwark.WithDryRunName("trial"), bulwark.WithDryRunMeterProvider(mp))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		called := false
		err := p.Do(ctx, func(context.Context) error { called = true; return nil })
		if called || !errors.Is(err, context.Canceled) {
			t.Errorf("Do() = %v, called = %v; want Canceled without calling fn", err, called)
		}
		if got := wouldRefuse(reader)["other"]; got != 0 {
			t.Errorf("would_refuse{other} = %d, want 0", got)
		}
	})

	t.Run("Admitter", func(t *testing.T) {
		var log []string
		a := &admitter{name: "a", refuse: bulwark.ErrRejected, log: &log}
		p, ok := bulwark.DryRun(a, bulwark.WithDryRunName("trial"), bulwark.WithDryRunMeterProvider(mp)).(bulwark.Admitter)
		if !ok {
			t.Fatal("DryRun of an Admitter is not an Admitter")
		}
		done, err := p.Admit(context.Background())
		if err != nil || done == nil {
			t.Fatalf("Admit() = %v, want admission", err)
		}
		done(nil)
		if got := wouldRefuse(reader)["rejected"]; got != 1 {
			t.Errorf("would_refuse{rejected} = %d, want 1", got)
		}
	})
}

// TestDryRunKeepsConcurrentMarker: a dry run calls fn as its policy does,
// so it must say so when that policy may call fn late; otherwise a chain
// reuses its call frames and a late call reaches another call's fn.
func TestDryRunKeepsConcurrentMarker(t *testing.T) {
	var wg sync.WaitGroup
	d := bulwark.DryRun(lateHedge{&wg})
	if c, ok := d.(bulwark.Concurrent); !ok || !c.ConcurrentFn() {
		t.Fatal("DryRun(p) hides that p calls fn late ([bulwark.Concurrent])")
	}
	if c, ok := bulwark.DryRun(bulwark.Timeout(time.Second)).(bulwark.Concurrent); ok && c.ConcurrentFn() {
		t.Error("DryRun(Timeout) claims to call fn concurrently")
	}
	checkLateCallsReachOwnFn(t, d, &wg, 100)
}
