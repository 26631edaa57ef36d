package breaker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
)

// slowCall returns an fn that takes d (under synctest) and returns err.
func slowCall(d time.Duration, err error) func(context.Context) error {
	return func(context.Context) error {
		time.Sleep(d)
		return err
	}
}

func TestSlowCallRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := New("slowratio", WithSlowCall(time.Second), WithSlowCallRatio(0.5), WithMinCalls(4),
			WithFailureRatio(1), WithBreakDuration(time.Minute))
		// Slow successes are successes, not failures.
		for range 3 {
			if err := b.Do(ctx, slowCall(2*time.Second, nil)); err != nil {
				t.Fatalf("Do() = %v", err)
			}
		}
		n := b.Counts()
		if n.Failures != 0 || n.Successes != 3 || n.Slow != 3 {
			t.Fatalf("Counts() = %+v, want 3 successes, 3 slow, no failure", n)
		}
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() below min calls = %v, want closed", got)
		}
		// The fourth call brings the window to min calls: 4 slow / 4 ≥ 0.5.
		_ = b.Do(ctx, slowCall(2*time.Second, nil))
		if got := b.State(); got != StateOpen {
			t.Fatalf("State() with 4 slow of 4 = %v, want open", got)
		}
		s := b.Snapshot()
		if !strings.Contains(s.Reason, "slow call ratio 1.00 ≥ 0.5 over 4 calls") || s.Source != "automatic" {
			t.Errorf("Snapshot reason %q source %q, want the slow call ratio, automatic", s.Reason, s.Source)
		}
		// A slow probe reopens it.
		time.Sleep(time.Minute + time.Nanosecond)
		_ = b.Do(ctx, slowCall(2*time.Second, nil))
		if got := b.State(); got != StateOpen {
			t.Fatalf("State() after a slow probe = %v, want open", got)
		}
		if s := b.Snapshot(); s.Reason != "probe was slow" {
			t.Errorf("reason = %q, want %q", s.Reason, "probe was slow")
		}
		// A fast probe closes it.
		time.Sleep(time.Minute + time.Nanosecond)
		_ = b.Do(ctx, succeed)
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() after a fast probe = %v, want closed", got)
		}
	})
}

func TestSlowCallRatioBelowThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := New("slowratio", WithSlowCall(time.Second), WithSlowCallRatio(0.5), WithMinCalls(4))
		_ = b.Do(ctx, slowCall(2*time.Second, nil))
		for range 10 {
			_ = b.Do(ctx, succeed)
		}
		_ = b.Do(ctx, slowCall(2*time.Second, nil))
		if got, n := b.State(), b.Counts(); got != StateClosed || n.Slow != 2 || n.Failures != 0 {
			t.Errorf("State() = %v, Counts() = %+v; want closed with 2 slow, no failure", got, n)
		}
		// Slow 429s are not counted at all, slow or not.
		for range 10 {
			_ = b.Do(ctx, slowCall(2*time.Second, bulwark.ErrRemoteRejected))
		}
		if got, n := b.State(), b.Counts(); got != StateClosed || n.Slow != 2 || n.Excluded != 10 {
			t.Errorf("after slow 429s: State() = %v, Counts() = %+v; want closed, 2 slow, 10 excluded", got, n)
		}
		// Slow failures count in both ratios.
		_ = b.Do(ctx, slowCall(2*time.Second, errBoom))
		if n := b.Counts(); n.Slow != 3 || n.Failures != 1 {
			t.Errorf("after a slow failure: Counts() = %+v, want 3 slow, 1 failure", n)
		}
	})
}

func TestSlowRemoteRejectedNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("slow429", WithSlowCall(time.Second), WithConsecutiveFailures(1))
		err := b.Do(context.Background(), slowCall(5*time.Second, bulwark.ErrRemoteRejected))
		if !errors.Is(err, bulwark.ErrRemoteRejected) {
			t.Fatalf("Do() = %v, want fn's error", err)
		}
		if got := b.State(); got != StateClosed {
			t.Errorf("State() after a slow 429 = %v, want closed", got)
		}
		if n := b.Counts(); n.Failures != 0 || n.Successes != 0 || n.Excluded != 1 {
			t.Errorf("Counts() = %+v, want the 429 excluded", n)
		}
	})
}

func TestSnapshotTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("snap", WithMinCalls(4), WithBreakDuration(10*time.Second))
		defer b.Close()
		if s := b.Snapshot(); s.Kind != "breaker" || s.State != "closed" || s.Health != "ok" || s.Name != "snap" || len(s.Events) != 0 {
			t.Fatalf("fresh Snapshot() = %+v", s)
		}
		run(t, b, "sfsf") // 0.5 ≥ 0.5 at the fourth
		s := b.Snapshot()
		if s.State != "open" || s.Health != "fail" {
			t.Fatalf("Snapshot() state %q health %q, want open, fail", s.State, s.Health)
		}
		if want := "failure ratio 0.50 ≥ 0.5 over 4 calls"; s.Reason != want || s.Source != "automatic" {
			t.Errorf("reason %q source %q, want %q automatic", s.Reason, s.Source, want)
		}
		if fig(s, "until probe") != 10 {
			t.Errorf("until probe = %v, want 10", fig(s, "until probe"))
		}
		time.Sleep(10*time.Second + time.Nanosecond)
		run(t, b, "s")
		s = b.Snapshot()
		want := []bulwark.Event{
			{From: "closed", To: "open", Source: "automatic", Reason: "failure ratio 0.50 ≥ 0.5 over 4 calls"},
			{From: "open", To: "half-open", Source: "automatic", Reason: "break of 10s ended"},
			{From: "half-open", To: "closed", Source: "automatic", Reason: "1 probes succeeded"},
		}
		if len(s.Events) != len(want) {
			t.Fatalf("Events = %+v, want %d", s.Events, len(want))
		}
		for i, e := range s.Events {
			e.Time = time.Time{}
			if e != want[i] {
				t.Errorf("Events[%d] = %+v, want %+v", i, e, want[i])
			}
		}
		if s.Changed.IsZero() {
			t.Error("Changed is zero after transitions")
		}
		_ = b.Control(context.Background(), "force-open", nil, "maintenance")
		if s := b.Snapshot(); s.State != "forced-open" || s.Source != "manual" || s.Reason != "maintenance" || s.Health != "fail" {
			t.Errorf("after force-open: %q %q %q %q", s.State, s.Source, s.Reason, s.Health)
		}
	})
}

func fig(s bulwark.Snapshot, name string) float64 {
	for _, f := range s.Figures {
		if f.Name == name {
			return f.Value
		}
	}
	return -1
}

func TestSnapshotConsecutiveReason(t *testing.T) {
	b := New("consec", WithConsecutiveFailures(3))
	run(t, b, "fff")
	if s := b.Snapshot(); s.Reason != "3 consecutive failures ≥ 3" {
		t.Errorf("reason = %q", s.Reason)
	}
	if f := fig(b.Snapshot(), "failures"); f != 0 {
		t.Errorf("failures after the trip = %v, want 0 (counts cleared)", f)
	}
}

func TestControl(t *testing.T) {
	ctx := context.Background()
	b := New("ctl")
	if got := len(b.Actions()); got != 3 {
		t.Fatalf("Actions() = %d actions, want 3", got)
	}
	tests := []struct {
		action string
		args   map[string]string
		want   State
	}{
		{"force-open", nil, StateForcedOpen},
		{"disable", map[string]string{}, StateDisabled},
		{"reset", nil, StateClosed},
	}
	for _, tt := range tests {
		if err := b.Control(ctx, tt.action, tt.args, "because "+tt.action); err != nil {
			t.Fatalf("Control(%s) = %v", tt.action, err)
		}
		if got := b.State(); got != tt.want {
			t.Errorf("after %s: State() = %v, want %v", tt.action, got, tt.want)
		}
		e, _ := b.c.log.Last()
		if e.Source != "manual" || e.Reason != "because "+tt.action || e.To != tt.want.label() {
			t.Errorf("after %s: last event %+v", tt.action, e)
		}
	}
	// Reset of a closed breaker is still recorded.
	_ = b.Control(ctx, "reset", nil, "again")
	if e, _ := b.c.log.Last(); e.Reason != "again" || e.From != "closed" || e.To != "closed" {
		t.Errorf("reset of a closed breaker: last event %+v", e)
	}
	for _, bad := range []struct {
		action string
		args   map[string]string
	}{
		{"explode", nil},
		{"", nil},
		{"force-open", map[string]string{"key": "x"}},
	} {
		if err := b.Control(ctx, bad.action, bad.args, ""); !errors.Is(err, bulwark.ErrInvalidControl) {
			t.Errorf("Control(%q, %v) = %v, want %v", bad.action, bad.args, err, bulwark.ErrInvalidControl)
		}
	}
	if got := b.State(); got != StateClosed {
		t.Errorf("State() after invalid controls = %v, want closed", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Control(cctx, "force-open", nil, ""); !errors.Is(err, context.Canceled) || b.State() != StateClosed {
		t.Errorf("Control(ended ctx) = %v, state %v; want context.Canceled and nothing done", err, b.State())
	}
}

func TestGroupSnapshotAndControl(t *testing.T) {
	ctx := context.Background()
	g := NewGroup("grp", WithConsecutiveFailures(1))
	defer g.Close()
	if s := g.Snapshot(); s.Kind != "breaker-group" || s.State != "closed" || s.Health != "ok" {
		t.Fatalf("fresh Snapshot() = %+v", s)
	}
	_ = g.Do(keyed("a"), fail)
	_ = g.Do(keyed("b"), succeed)
	s := g.Snapshot()
	if s.State != "1 open" || s.Health != "fail" || fig(s, "open") != 1 || fig(s, "closed") != 1 || fig(s, "failures") != 1 {
		t.Errorf("Snapshot() = %+v", s)
	}
	if !strings.HasPrefix(s.Reason, `key "a": 1 consecutive failures`) {
		t.Errorf("reason = %q, want it to name the key", s.Reason)
	}
	if err := g.Control(ctx, "disable", map[string]string{"key": "b"}, "noisy"); err != nil {
		t.Fatal(err)
	}
	if got := g.State("b"); got != StateDisabled {
		t.Errorf("State(b) = %v, want disabled", got)
	}
	if s := g.Snapshot(); s.State != "1 open, 1 disabled" || s.Reason != `key "b": noisy` || s.Source != "manual" {
		t.Errorf("Snapshot() state %q reason %q source %q", s.State, s.Reason, s.Source)
	}
	if err := g.Control(ctx, "reset", map[string]string{"key": "a"}, "fixed"); err != nil || g.State("a") != StateClosed {
		t.Errorf("reset a: %v, state %v", err, g.State("a"))
	}
	if err := g.Control(ctx, "force-open", map[string]string{"key": ""}, ""); err != nil || g.State("") != StateForcedOpen {
		t.Errorf("force-open of key \"\": %v, state %v", err, g.State(""))
	}
	if err := g.Control(ctx, "reset", map[string]string{"key": "never"}, ""); err != nil {
		t.Errorf("reset of an unknown key = %v, want nil", err)
	}
	for _, args := range []map[string]string{nil, {"host": "a"}, {"key": "a", "x": "1"}} {
		if err := g.Control(ctx, "reset", args, ""); !errors.Is(err, bulwark.ErrInvalidControl) {
			t.Errorf("Control(reset, %v) = %v, want %v", args, err, bulwark.ErrInvalidControl)
		}
	}
	if err := g.Control(ctx, "nope", map[string]string{"key": "a"}, ""); !errors.Is(err, bulwark.ErrInvalidControl) {
		t.Errorf("unknown action: %v", err)
	}
	acts := g.Actions()
	if len(acts) != 3 || len(acts[0].Params) != 1 || acts[0].Params[0].Name != "key" || !acts[0].Params[0].Required {
		t.Errorf("Actions() = %+v", acts)
	}
	acts[0].Params[0].Name = "mutated"
	if g.Actions()[0].Params[0].Name != "key" {
		t.Error("Actions() returns shared slices")
	}
}

func TestHealthCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := New("hc", WithConsecutiveFailures(1), WithBreakDuration(5*time.Second))
		var check func(context.Context) error = b.HealthCheck
		if err := check(ctx); err != nil {
			t.Fatalf("closed: HealthCheck() = %v", err)
		}
		run(t, b, "f")
		err := check(ctx)
		if !errors.Is(err, ErrOpen) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("open: HealthCheck() = %v, want %v", err, ErrOpen)
		}
		if d, _ := bulwark.RetryAfter(err); d != 5*time.Second {
			t.Errorf("open: hint %v, want 5s", d)
		}
		time.Sleep(5*time.Second + time.Nanosecond)
		if err := check(ctx); err != nil {
			t.Errorf("half-open: HealthCheck() = %v, want nil", err)
		}
		b.ForceOpen()
		if err := check(ctx); !errors.Is(err, ErrOpen) {
			t.Errorf("forced open: HealthCheck() = %v, want %v", err, ErrOpen)
		}
		b.Disable()
		if err := check(ctx); err != nil {
			t.Errorf("disabled: HealthCheck() = %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := check(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("ended ctx: HealthCheck() = %v", err)
		}
	})
}

func TestRegistry(t *testing.T) {
	r := bulwark.NewRegistry()
	b, g := New("reg-b"), NewGroup("reg-g")
	r.Register(b, g)
	snaps := r.Snapshots()
	if len(snaps) != 2 || snaps[0].Kind != "breaker" || snaps[1].Kind != "breaker-group" {
		t.Errorf("Snapshots() = %+v", snaps)
	}
}
