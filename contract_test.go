package bulwark_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	t.Run("Timeout", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return bulwark.Timeout(time.Second) })
	})
	t.Run("DryRun", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy { return bulwark.DryRun(bulwark.Timeout(time.Second)) })
	})
	t.Run("Chain", func(t *testing.T) {
		bulwarktest.TestPolicy(t, func() bulwark.Policy {
			return bulwark.Chain(bulwark.Timeout(time.Second), bulwark.DryRun(bulwark.Timeout(time.Minute)))
		})
	})
}
