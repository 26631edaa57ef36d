package bulwark_test

import (
	"context"
	"errors"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark"
)

func refuse(err error) bulwark.Policy {
	return bulwark.PolicyFunc(func(context.Context, func(context.Context) error) error { return err })
}

// wouldRefuse collects bulwark.dryrun.would_refuse by reason.
func wouldRefuse(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "bulwark.dryrun.would_refuse" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				reason, _ := dp.Attributes.Value("bulwark.reason")
				name, _ := dp.Attributes.Value("bulwark.policy.name")
				if name.AsString() != "trial" {
					t.Errorf("bulwark.policy.name = %q, want trial", name.AsString())
				}
				got[reason.AsString()] = dp.Value
			}
		}
	}
	return got
}

func TestDryRun(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	t.Run("RefusingPolicyRunsFnOnce", func(t *testing.T) {
		p := bulwark.DryRun(refuse(bulwark.ErrUnavailable), bulwark.WithDryRunName("trial"), bulwark.WithDryRunMeterProvider(mp))
		calls := 0
		err := p.Do(context.Background(), func(context.Context) error { calls++; return nil })
		if err != nil || calls != 1 {
			t.Errorf("Do() = %v after %d calls, want nil after 1", err, calls)
		}
		if got := wouldRefuse(t, reader)["unavailable"]; got != 1 {
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
		if got := wouldRefuse(t, reader)["rejected"]; got != 0 {
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
		if got := wouldRefuse(t, reader)["other"]; got != 0 {
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
		if got := wouldRefuse(t, reader)["rejected"]; got != 1 {
			t.Errorf("would_refuse{rejected} = %d, want 1", got)
		}
	})
}
