package breaker

import (
	"context"
	"errors"
	"testing"

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
				give = bulwark.ErrRemoteRejected // success
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
			case 1, 3:
				succ++
				run = 0
			}
			if got := b.State() == StateOpen; got != open {
				t.Fatalf("call %d: open = %v, want %v (succ %d, fails %d, run %d)", i, got, open, succ, fails, run)
			}
		}
	})
}
