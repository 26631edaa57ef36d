package bulwark

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/internal/telemetry"
)

// DryRunOption configures [DryRun].
type DryRunOption interface{ apply(*dryRunOptions) }

type dryRunOptions struct {
	name string
	mp   metric.MeterProvider
}

type dryRunOptionFunc func(*dryRunOptions)

func (f dryRunOptionFunc) apply(o *dryRunOptions) { f(o) }

// WithDryRunName names the dry run in its metrics (bulwark.policy.name).
// Default: "dryrun".
func WithDryRunName(name string) DryRunOption {
	return dryRunOptionFunc(func(o *dryRunOptions) { o.name = name })
}

// WithDryRunMeterProvider sets where the dry run's metrics go; nil is
// ignored. Default: otel.GetMeterProvider().
func WithDryRunMeterProvider(mp metric.MeterProvider) DryRunOption {
	return dryRunOptionFunc(func(o *dryRunOptions) {
		if mp != nil {
			o.mp = mp
		}
	})
}

// The bulwark.reason values of bulwark.dryrun.would_refuse.
const (
	reasonRejected    = "rejected"
	reasonUnavailable = "unavailable"
	reasonOther       = "other"
)

// DryRun returns a policy that asks p whether it would run fn, then runs fn
// anyway: a way to try a new limit in production before enforcing it.
//
// "p would have refused" is decided by whether p called fn, never by the
// class of the error, so a failing fn is never run twice: when p runs fn,
// p's result is returned as is. When p returns without running fn (and the
// caller's context has not ended), DryRun counts
// bulwark.dryrun.would_refuse {bulwark.policy.name, bulwark.reason =
// rejected|unavailable|other} and runs fn itself.
//
// The result implements [Admitter] when p does: a refused Admit is counted
// and admitted anyway. It reports p's [Concurrent] marker as its own, since
// it calls fn wherever p does.
func DryRun(p Policy, opts ...DryRunOption) Policy {
	if p == nil {
		panic("bulwark: DryRun: nil policy")
	}
	o := dryRunOptions{name: "dryrun"}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	d := &dryRun{p: p}
	name := telemetry.KeyPolicyName.String(o.name)
	d.counts = telemetry.ObservedCounters(telemetry.Meter(o.mp, ""), "bulwark.dryrun.would_refuse",
		"Calls the wrapped policy would have refused; they ran anyway.", "{call}",
		telemetry.NewSet(name, telemetry.KeyReason.String(reasonRejected)),
		telemetry.NewSet(name, telemetry.KeyReason.String(reasonUnavailable)),
		telemetry.NewSet(name, telemetry.KeyReason.String(reasonOther)),
	)
	if a, ok := p.(Admitter); ok {
		return &dryRunAdmitter{dryRun: d, a: a}
	}
	return d
}

type dryRun struct {
	p      Policy
	counts *telemetry.Counters
}

func (d *dryRun) count(err error) {
	switch {
	case errors.Is(err, ErrRejected):
		d.counts.Add(0, 1)
	case errors.Is(err, ErrUnavailable):
		d.counts.Add(1, 1)
	default:
		d.counts.Add(2, 1)
	}
}

func (d *dryRun) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var ran atomic.Bool
	err := d.p.Do(ctx, func(ctx context.Context) error {
		ran.Store(true)
		return fn(ctx)
	})
	if ran.Load() {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	d.count(err)
	return fn(ctx)
}

// ConcurrentFn reports whether p may call fn concurrently or late (see
// [Concurrent]): the dry run hands fn to p, so a [Chain] must know.
func (d *dryRun) ConcurrentFn() bool {
	c, ok := d.p.(Concurrent)
	return ok && c.ConcurrentFn()
}

type dryRunAdmitter struct {
	*dryRun
	a Admitter
}

func (d *dryRunAdmitter) Admit(ctx context.Context) (func(error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	done, err := d.a.Admit(ctx)
	if err == nil {
		return done, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	d.count(err)
	return noopDone, nil
}
