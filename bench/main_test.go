package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// hystrix-go starts one metrics goroutine per command and one per pool
// the first time a command runs, and never stops them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/afex/hystrix-go/hystrix.(*metricExchange).Monitor"),
		goleak.IgnoreAnyFunction("github.com/afex/hystrix-go/hystrix.(*poolMetrics).Monitor"),
	)
}
