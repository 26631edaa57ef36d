package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/internal/metrictest"
)

// hinted is a downstream's answer with a Retry-After hint.
type hinted struct {
	class error
	d     time.Duration
}

func (h *hinted) Error() string             { return fmt.Sprintf("downstream: %v, retry after %v", h.class, h.d) }
func (h *hinted) Unwrap() error             { return h.class }
func (h *hinted) RetryAfter() time.Duration { return h.d }
func answer(class error, d time.Duration) func(context.Context) error {
	return func(context.Context) error { return &hinted{class, d} }
}

func TestPauseOnHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := metrictest.New(t)
		b := New("pause", WithPauseOnHint(), WithMeterProvider(c.Provider), WithConsecutiveFailures(1))
		defer b.Close()
		err := b.Do(ctx, answer(bulwark.ErrRemoteRejected, 3*time.Second))
		if !errors.Is(err, bulwark.ErrRemoteRejected) {
			t.Fatalf("Do() = %v, want the downstream's answer", err)
		}
		if got := b.State(); got != StatePaused {
			t.Fatalf("State() after a 429 with a 3 s hint = %v, want %v", got, StatePaused)
		}
		if got := c.Int64("bulwark.breaker.state")["bulwark.policy.name=pause"]; got != 3 {
			t.Errorf("state gauge while paused = %d, want 3", got)
		}
		time.Sleep(time.Second)
		calls := 0
		for range 100 {
			err = b.Do(ctx, func(context.Context) error { calls++; return nil })
		}
		if calls != 0 || !errors.Is(err, ErrPaused) || !errors.Is(err, bulwark.ErrUnavailable) {
			t.Fatalf("Do() while paused = %v after %d calls of fn, want %v and none", err, calls, ErrPaused)
		}
		if d, _ := bulwark.RetryAfter(err); d != 2*time.Second {
			t.Errorf("RetryAfter while paused = %v, want 2s (what is left)", d)
		}
		if n := b.Counts(); n.Requests != 1 || n.Failures != 0 || n.Excluded != 1 {
			t.Errorf("Counts() = %+v: the pause's refusals must not be counted and the 429 excluded", n)
		}
		time.Sleep(2*time.Second - time.Nanosecond)
		if err := b.Do(ctx, succeed); !errors.Is(err, ErrPaused) {
			t.Errorf("Do() 1 ns before the advised time = %v, want %v", err, ErrPaused)
		}
		time.Sleep(time.Nanosecond)
		if err := b.Do(ctx, succeed); err != nil {
			t.Errorf("Do() at the advised time = %v, want nil", err)
		}
		if got := b.State(); got != StateClosed {
			t.Errorf("State() after the pause = %v, want closed (no probes)", got)
		}
		s := b.Snapshot()
		if len(s.Events) != 2 || s.Events[0].To != "paused" || s.Events[1].From != "paused" || s.Events[1].To != "closed" {
			t.Errorf("Events = %+v, want closed→paused→closed", s.Events)
		}
		want := "the downstream answered rejected and asked to wait 3s"
		if s.Events[0].Reason != want || s.Events[0].Source != "automatic" {
			t.Errorf("pause event = %+v, want reason %q", s.Events[0], want)
		}
		trans := c.Int64("bulwark.breaker.transitions")
		if trans["bulwark.from_state=closed,bulwark.policy.name=pause,bulwark.to_state=paused"] != 1 ||
			trans["bulwark.from_state=paused,bulwark.policy.name=pause,bulwark.to_state=closed"] != 1 {
			t.Errorf("transitions = %v", trans)
		}
	})
}

func TestPauseOn503StillTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := New("dying", WithPauseOnHint(), WithConsecutiveFailures(2), WithBreakDuration(time.Minute))
		_ = b.Do(ctx, answer(bulwark.ErrRemoteUnavailable, time.Second))
		if n := b.Counts(); n.Failures != 1 {
			t.Fatalf("Counts() after a 503 = %+v, want it counted as a failure", n)
		}
		// The pause refuses without counting: no second failure from it.
		for range 10 {
			_ = b.Do(ctx, fail)
		}
		time.Sleep(time.Second)
		if got := b.State(); got != StateClosed {
			t.Fatalf("State() after the pause = %v, want closed: the pause tripped it", got)
		}
		_ = b.Do(ctx, answer(bulwark.ErrRemoteUnavailable, time.Second))
		if got := b.State(); got != StatePaused {
			t.Fatalf("State() = %v, want paused (tripped beneath)", got)
		}
		time.Sleep(time.Second)
		if got := b.State(); got != StateOpen {
			t.Errorf("State() after the pause = %v, want open: two 503s trip it", got)
		}
		if err := b.Do(ctx, succeed); !errors.Is(err, ErrOpen) {
			t.Errorf("Do() = %v, want %v", err, ErrOpen)
		}
	})
}

func TestPauseRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tests := []struct {
			name string
			opts []Option
			fn   func(context.Context) error
			want State
		}{
			{"off by default", nil, answer(bulwark.ErrRemoteRejected, time.Second), StateClosed},
			{"no hint", []Option{WithPauseOnHint()}, answer(bulwark.ErrRemoteRejected, 0), StateClosed},
			{"negative hint", []Option{WithPauseOnHint()}, answer(bulwark.ErrRemoteRejected, -time.Second), StateClosed},
			{"local refusal with a hint", []Option{WithPauseOnHint()}, answer(bulwark.ErrUnavailable, time.Second), StateClosed},
			{"unclassified with a hint", []Option{WithPauseOnHint()}, answer(errBoom, time.Second), StateClosed},
			{"503 with a hint", []Option{WithPauseOnHint()}, answer(bulwark.ErrRemoteUnavailable, time.Second), StatePaused},
			{"wrapped 429", []Option{WithPauseOnHint()}, func(context.Context) error {
				return fmt.Errorf("call: %w", &hinted{bulwark.ErrRemoteRejected, time.Second})
			}, StatePaused},
		}
		for _, tt := range tests {
			b := New("rules", tt.opts...)
			_ = b.Do(ctx, tt.fn)
			if got := b.State(); got != tt.want {
				t.Errorf("%s: State() = %v, want %v", tt.name, got, tt.want)
			}
			// Through Admit too.
			b2 := New("rules", tt.opts...)
			done, _ := b2.Admit(ctx)
			done(tt.fn(ctx))
			if got := b2.State(); got != tt.want {
				t.Errorf("%s (Admit): State() = %v, want %v", tt.name, got, tt.want)
			}
		}

		b := New("extend", WithPauseOnHint())
		_ = b.Do(ctx, answer(bulwark.ErrRemoteRejected, 5*time.Second))
		b.pauseOn(&hinted{bulwark.ErrRemoteRejected, time.Second}) // sooner: ignored
		if d := b.pauseLeft(); d != 5*time.Second {
			t.Errorf("pause left after a shorter hint = %v, want 5s", d)
		}
		b.pauseOn(&hinted{bulwark.ErrRemoteRejected, 8 * time.Second}) // later: extends
		if d := b.pauseLeft(); d != 8*time.Second {
			t.Errorf("pause left after a longer hint = %v, want 8s", d)
		}
		b.Reset()
		if got := b.State(); got != StateClosed {
			t.Errorf("State() after Reset = %v, want closed", got)
		}
		b.ForceOpen()
		b.pauseOn(&hinted{bulwark.ErrRemoteRejected, time.Second})
		b.Reset()
		if got := b.State(); got != StateClosed {
			t.Errorf("a forced-open breaker took a pause: State() = %v", got)
		}
		b.Disable()
		_ = b.Do(ctx, answer(bulwark.ErrRemoteRejected, time.Second))
		if err := b.Do(ctx, succeed); err != nil || b.State() != StateDisabled {
			t.Errorf("disabled: Do() = %v, State() = %v; want nil, disabled", err, b.State())
		}
	})
}

func TestPauseMaxHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("huge", WithPauseOnHint())
		time.Sleep(time.Second)
		_ = b.Do(context.Background(), answer(bulwark.ErrRemoteRejected, math.MaxInt64))
		time.Sleep(1000 * time.Hour)
		err := b.Do(context.Background(), succeed)
		if !errors.Is(err, ErrPaused) {
			t.Fatalf("Do() = %v, want %v: a MaxInt64 hint overflowed", err, ErrPaused)
		}
		if err := b.HealthCheck(context.Background()); !errors.Is(err, ErrPaused) {
			t.Errorf("HealthCheck() = %v, want %v", err, ErrPaused)
		}
	})
}

func TestGroupPausesPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup("gpause", WithPauseOnHint())
		_ = g.Do(keyed("a"), answer(bulwark.ErrRemoteRejected, time.Second))
		if err := g.Do(keyed("a"), succeed); !errors.Is(err, ErrPaused) {
			t.Errorf("Do(a) = %v, want %v", err, ErrPaused)
		}
		if err := g.Do(keyed("b"), succeed); err != nil {
			t.Errorf("Do(b) = %v, want nil", err)
		}
		if s := g.Snapshot(); s.State != "1 paused" || fig(s, "paused") != 1 {
			t.Errorf("Snapshot() state %q, paused %v", s.State, fig(s, "paused"))
		}
		time.Sleep(time.Second)
		if err := g.Do(keyed("a"), succeed); err != nil {
			t.Errorf("Do(a) after the pause = %v", err)
		}
		if s := g.Snapshot(); s.State != "closed" || fig(s, "paused") != 0 || fig(s, "closed") != 2 {
			t.Errorf("Snapshot() after = %q, %+v", s.State, s.Figures)
		}
	})
}

func TestGroupEvictsAfterAPauseEndedUnnoticed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup("gevict", WithPauseOnHint(), WithMaxKeys(1))
		_ = g.Do(keyed("a"), answer(bulwark.ErrRemoteRejected, time.Second))
		if err := g.Do(keyed("b"), succeed); err != nil {
			t.Fatalf("Do(b) = %v (on the overflow breaker)", err)
		}
		time.Sleep(time.Second) // a's pause ends; no call of a notices
		_ = g.Do(keyed("c"), succeed)
		_ = g.Do(keyed("c"), succeed)
		if g.State("c") != StateClosed || g.Len() != 1 {
			t.Fatalf("Len() = %d", g.Len())
		}
		g.mu.RLock()
		_, hasA := g.members["a"]
		_, hasC := g.members["c"]
		g.mu.RUnlock()
		if hasA || !hasC {
			t.Errorf("members a: %v, c: %v; want a evicted for c once its pause ended", hasA, hasC)
		}
		if s := g.Snapshot(); fig(s, "paused") != 0 || fig(s, "closed") != 2 { // c and the overflow breaker
			t.Errorf("members by state: %+v", s.Figures)
		}
	})
}
