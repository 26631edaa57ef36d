package breaker

import (
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
)

func TestContract(t *testing.T) {
	t.Run("Breaker", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return New("contract") })
	})
	t.Run("ConsecutiveFailures", func(t *testing.T) {
		// Each subtest fails at most once, below the rule's 2: the
		// breaker must stay usable after a panic or a Goexit.
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return New("contract", WithConsecutiveFailures(2), WithProbes(3))
		})
	})
	t.Run("Disabled", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			b := New("contract")
			b.Disable()
			return b
		})
	})
	t.Run("Group", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return NewGroup("contract", WithMaxKeys(2)) })
	})
	t.Run("Adaptive", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return NewAdaptive("contract") })
	})
	t.Run("AdaptiveThrottling", func(t *testing.T) {
		// Refuses every call it may: the suite's refusals must hold.
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return NewAdaptive("contract", WithRandom(func() float64 { return 0 }))
		})
	})
	t.Run("PauseOnHint", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return New("contract", WithPauseOnHint()) })
	})
	t.Run("Chain", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return bulwark.Chain(New("outer"), NewGroup("inner"))
		})
	})
}
