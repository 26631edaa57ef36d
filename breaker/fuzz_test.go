package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
)

// FuzzTripRule checks the breaker against a model of its trip rules on
// sequences of outcomes with no time passing: it opens at exactly the first
// failure after which failures/(successes+failures) ≥ ratio over at least
// minCalls counted calls, or after consecutive failures in a row, and
// then refuses everything.
func FuzzTripRule(f *testing.F) {
	f.Add([]byte("ssssffff"), uint8(8), uint8(50), uint8(0))
	f.Add([]byte("sfxsfxffr"), uint8(4), uint8(50), uint8(3))
	f.Add([]byte("fffffffffffff"), uint8(20), uint8(10), uint8(0))
	f.Add([]byte("sssssssssfsssssssssf"), uint8(20), uint8(10), uint8(0))
	f.Fuzz(func(t *testing.T, seq []byte, minCalls, percent, consecutive uint8) {
		minCalls = max(minCalls, 1)
		percent = max(percent%101, 1)
		ratio := float64(percent) / 100
		b := New("fuzz", WithMinCalls(int(minCalls)), WithFailureRatio(ratio),
			WithConsecutiveFailures(int(consecutive)))
		var succ, fails, run int
		open := false
		for i, c := range seq {
			var give error
			switch c % 4 {
			case 0:
				give = errBoom // failure
			case 1:
				give = bulwark.ErrRemoteRejected // a downstream's 429: not counted
			case 2:
				give = bulwark.ErrUnavailable // excluded
			}
			err := b.Do(context.Background(), func(context.Context) error { return give })
			if open {
				if !errors.Is(err, ErrOpen) {
					t.Fatalf("call %d: Do() = %v on a tripped breaker, want %v", i, err, ErrOpen)
				}
				continue
			}
			if err != give {
				t.Fatalf("call %d: Do() = %v, want fn's %v", i, err, give)
			}
			switch c % 4 {
			case 0:
				fails++
				run++
				n := succ + fails
				open = (consecutive > 0 && run >= int(consecutive)) ||
					(n >= int(minCalls) && float64(fails)/float64(n) >= ratio)
			case 3:
				succ++
				run = 0
			}
			if got := b.State() == StateOpen; got != open {
				t.Fatalf("call %d: open = %v, want %v (succ %d, fails %d, run %d)", i, got, open, succ, fails, run)
			}
		}
	})
}

// FuzzRing checks the rolling window against a model: a counter's total
// at now is the sum of what was added in the last n buckets (bucket
// numbers now/width − n < b ≤ now/width), whatever the steps of time.
func FuzzRing(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 4, 0, 9}, uint8(4))
	f.Add([]byte{0, 0, 0, 255, 255, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, ops []byte, buckets uint8) {
		n := int(buckets%16) + 1
		const width = time.Second
		r := newRing(time.Duration(n)*width, n, 2)
		type event struct {
			bucket int64
			i      int
		}
		var events []event
		var now time.Duration
		for _, op := range ops {
			now += time.Duration(op>>2) * width / 4 // steps of 0 to 15.75 s
			i := int(op & 1)
			r.add(now, i, 1)
			events = append(events, event{int64(now / width), i})
			for c := range 2 {
				var want uint64
				for _, e := range events {
					if e.i == c && e.bucket > int64(now/width)-int64(n) {
						want++
					}
				}
				if got := r.sum(now, c); got != want {
					t.Fatalf("at %v: counter %d = %d, want %d", now, c, got, want)
				}
			}
		}
	})
}
