package breaker

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
)

// Issue 14 item 12: every option refuses a meaningless value with a panic
// naming the package and the option; huge values stay valid.
func TestOptionValidation(t *testing.T) {
	const maxDur = time.Duration(math.MaxInt64)
	tests := []struct {
		name string
		give func()
		want string // "" = no panic; else the panic names this
	}{
		{"ratio 0", func() { WithFailureRatio(0) }, "WithFailureRatio"},
		{"ratio < 0", func() { WithFailureRatio(-0.5) }, "WithFailureRatio"},
		{"ratio > 1", func() { WithFailureRatio(1.5) }, "WithFailureRatio"},
		{"ratio NaN", func() { WithFailureRatio(math.NaN()) }, "WithFailureRatio"},
		{"ratio +Inf", func() { WithFailureRatio(math.Inf(1)) }, "WithFailureRatio"},
		{"ratio 1", func() { WithFailureRatio(1) }, ""},
		{"min calls 0", func() { WithMinCalls(0) }, "WithMinCalls"},
		{"min calls -1", func() { WithMinCalls(-1) }, "WithMinCalls"},
		{"min calls > uint32", func() { WithMinCalls(math.MaxUint32 + 1) }, "WithMinCalls"},
		{"min calls max uint32", func() { WithMinCalls(math.MaxUint32) }, ""},
		{"consecutive < 0", func() { WithConsecutiveFailures(-1) }, "WithConsecutiveFailures"},
		{"consecutive > uint32", func() { WithConsecutiveFailures(math.MaxUint32 + 1) }, "WithConsecutiveFailures"},
		{"consecutive 0", func() { WithConsecutiveFailures(0) }, ""},
		{"window 0", func() { WithWindow(0, 1) }, "WithWindow"},
		{"window < 0", func() { WithWindow(-time.Second, 1) }, "WithWindow"},
		{"buckets 0", func() { WithWindow(time.Second, 0) }, "WithWindow"},
		{"buckets < 0", func() { WithWindow(time.Second, -3) }, "WithWindow"},
		{"buckets > d", func() { WithWindow(5, 10) }, "WithWindow"},
		{"buckets > MaxBuckets", func() { WithWindow(time.Hour, MaxBuckets+1) }, "WithWindow"},
		{"window max", func() { New("v", WithWindow(maxDur, 10)).Do(context.Background(), succeed) }, ""},
		{"window max 1 bucket", func() { New("v", WithWindow(maxDur, 1)).Do(context.Background(), succeed) }, ""},
		{"window max MaxBuckets", func() { New("v", WithWindow(maxDur, MaxBuckets)).Do(context.Background(), succeed) }, ""},
		{"slow 0", func() { WithSlowCall(0) }, "WithSlowCall"},
		{"slow < 0", func() { WithSlowCall(-1) }, "WithSlowCall"},
		{"slow max", func() { New("v", WithSlowCall(maxDur)).Do(context.Background(), succeed) }, ""},
		{"slow ratio 0", func() { WithSlowCallRatio(0) }, "WithSlowCallRatio"},
		{"slow ratio > 1", func() { WithSlowCallRatio(1.01) }, "WithSlowCallRatio"},
		{"slow ratio NaN", func() { WithSlowCallRatio(math.NaN()) }, "WithSlowCallRatio"},
		{"slow ratio -Inf", func() { WithSlowCallRatio(math.Inf(-1)) }, "WithSlowCallRatio"},
		{"slow ratio without slow call", func() { New("v", WithSlowCallRatio(0.5)) }, "WithSlowCallRatio needs WithSlowCall"},
		{"slow ratio without slow call, group", func() { NewGroup("v", WithSlowCallRatio(0.5)) }, "WithSlowCallRatio needs WithSlowCall"},
		{"break 0", func() { WithBreakDuration(0) }, "WithBreakDuration"},
		{"break < 0", func() { WithBreakDuration(math.MinInt64) }, "WithBreakDuration"},
		{"break max", func() { WithBreakDuration(maxDur) }, ""},
		{"probes 0", func() { WithProbes(0) }, "WithProbes"},
		{"probes > uint32", func() { WithProbes(math.MaxUint32 + 1) }, "WithProbes"},
		{"max keys 0", func() { WithMaxKeys(0) }, "WithMaxKeys"},
		{"max keys < 0", func() { WithMaxKeys(-1) }, "WithMaxKeys"},
		{"max keys max", func() { WithMaxKeys(math.MaxInt) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				v, _ := r.(string)
				switch {
				case tt.want == "" && r != nil:
					t.Errorf("panic %v, want none", r)
				case tt.want != "" && (!strings.HasPrefix(v, "breaker: ") || !strings.Contains(v, tt.want)):
					t.Errorf("panic %q, want one starting with %q and naming %q", v, "breaker: ", tt.want)
				}
			}()
			tt.give()
		})
	}
}

// Issue 14 item 11: a break of math.MaxInt64 ("until reset") must not
// overflow into a break that ended long ago.
func TestBreakDurationMaxInt64(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("forever", WithConsecutiveFailures(1), WithBreakDuration(math.MaxInt64))
		time.Sleep(time.Second) // now + break overflows only when now > 0
		run(t, b, "f")
		time.Sleep(1000 * time.Hour)
		err := b.Do(context.Background(), succeed)
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("Do() 1000 h later = %v, want %v", err, ErrOpen)
		}
		if d, ok := bulwark.RetryAfter(err); !ok || d < 100*365*24*time.Hour {
			t.Errorf("RetryAfter = %v, %v, want about 292 years", d, ok)
		}
		if got := b.Snapshot().Figures; got[len(got)-1].Value <= 0 {
			t.Errorf("until probe = %v, want > 0", got[len(got)-1])
		}
	})
}

func TestGroupKeepsBreakerOpenForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup("forever", WithMaxKeys(1), WithConsecutiveFailures(1), WithBreakDuration(math.MaxInt64))
		time.Sleep(time.Second) // now + break overflows only when now > 0
		_ = g.Do(keyed("bad"), fail)
		if got := g.State("bad"); got != StateOpen {
			t.Fatalf("State(bad) = %v, want %v", got, StateOpen)
		}
		time.Sleep(time.Hour)
		for range 3 {
			if err := g.Do(keyed("other"), succeed); err != nil {
				t.Fatalf("Do(other) = %v, want nil (on the overflow breaker)", err)
			}
		}
		if got := g.State("bad"); got != StateOpen {
			t.Errorf("State(bad) after other keys came = %v, want %v: an open breaker was evicted", got, StateOpen)
		}
		if err := g.Do(keyed("bad"), succeed); !errors.Is(err, ErrOpen) {
			t.Errorf("Do(bad) = %v, want %v", err, ErrOpen)
		}
	})
}

// Issue 14 item 14: a refusal's hint is the refused call's and stays so,
// whatever happens to the breaker or to other callers afterwards.
func TestRefusalHintIsTheCallsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New("own", WithConsecutiveFailures(1), WithBreakDuration(10*time.Second), WithProbes(1))
		run(t, b, "f")
		first := b.Do(context.Background(), succeed)
		time.Sleep(3 * time.Second)
		second := b.Do(context.Background(), succeed)
		b.Reset()
		run(t, b, "f")
		time.Sleep(time.Second)
		third := b.Do(context.Background(), succeed)
		for _, c := range []struct {
			name string
			err  error
			want time.Duration
		}{
			{"first", first, 10 * time.Second},
			{"second", second, 7 * time.Second},
			{"third", third, 9 * time.Second},
		} {
			if d, _ := bulwark.RetryAfter(c.err); d != c.want {
				t.Errorf("%s refusal: RetryAfter = %v, want %v", c.name, d, c.want)
			}
		}
		if first == second {
			t.Error("two refusals with different hints are the same value")
		}

		// Half-open with its probe running: the hint is the break.
		time.Sleep(9*time.Second + time.Nanosecond)
		done, err := b.Admit(context.Background())
		if err != nil {
			t.Fatalf("probe: Admit() = %v", err)
		}
		probes := b.Do(context.Background(), succeed)
		if !errors.Is(probes, ErrTooManyProbes) {
			t.Fatalf("Do() with the probe running = %v, want %v", probes, ErrTooManyProbes)
		}
		done(nil)
		if d, _ := bulwark.RetryAfter(probes); d != 10*time.Second {
			t.Errorf("too many probes: RetryAfter after the probe closed it = %v, want 10s", d)
		}
	})
}

func TestRefusalHintsUnderConcurrency(t *testing.T) {
	b := New("conc", WithConsecutiveFailures(1), WithBreakDuration(time.Hour))
	run(t, b, "f")
	type held struct {
		err  error
		hint time.Duration
	}
	var mine []held
	results := make(chan held, 64)
	for range 64 {
		go func() {
			err := b.Do(context.Background(), succeed)
			d, _ := bulwark.RetryAfter(err)
			results <- held{err, d}
		}()
	}
	for range 64 {
		mine = append(mine, <-results)
	}
	// Others keep being refused, with shorter hints, over several
	// milliseconds; what each caller holds must not change.
	for range 20 {
		time.Sleep(time.Millisecond)
		_ = b.Do(context.Background(), succeed)
	}
	for i, h := range mine {
		if h.hint <= 0 || h.hint > time.Hour {
			t.Errorf("refusal %d: RetryAfter = %v, want in (0, 1h]", i, h.hint)
		}
		if d, _ := bulwark.RetryAfter(h.err); d != h.hint {
			t.Errorf("refusal %d: RetryAfter = %v later, %v when refused", i, d, h.hint)
		}
	}
}
