package degrade_test

import (
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
	"github.com/bulwark-go/bulwark/degrade"
)

func TestContract(t *testing.T) {
	t.Run("Switch", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return degrade.NewSwitch("contract") })
	})
	t.Run("SwitchWithTrigger", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return degrade.NewSwitch("contract", degrade.WithTrigger(degrade.When(func() bool { return false }, degrade.WithInterval(0))))
		})
	})
	t.Run("SwitchReleased", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			s := degrade.NewSwitch("contract", degrade.WithRetryAfter(time.Second))
			s.Set(true, "contract")
			s.Release()
			return s
		})
	})
	t.Run("Shedder", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return degrade.NewShedder("contract") })
	})
	t.Run("ShedderLevel2", func(t *testing.T) {
		// The suite calls with the default tier, Critical, which level 2
		// serves.
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			s := degrade.NewShedder("contract")
			s.SetLevel(2, "contract")
			return s
		})
	})
	t.Run("Chain", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return bulwark.Chain(degrade.NewShedder("outer"), degrade.NewSwitch("inner"))
		})
	})
}
