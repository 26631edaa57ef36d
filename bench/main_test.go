package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// hystrix-go starts one metrics goroutine per command and one per pool
// the first time a command runs, and never stops them; sentinel-golang
// starts its statistics and system collectors at Init, for good.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/afex/hystrix-go/hystrix.(*metricExchange).Monitor"),
		goleak.IgnoreAnyFunction("github.com/afex/hystrix-go/hystrix.(*poolMetrics).Monitor"),
		goleak.IgnoreAnyFunction("github.com/alibaba/sentinel-golang/util.RunWithRecover"),
	)
}
