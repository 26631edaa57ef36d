//go:build !unix

package degrade

import (
	rtmetrics "runtime/metrics"
	"time"
)

// processCPUTime is the Go runtime's estimate of the CPU time the process
// used: all of GOMAXPROCS's time but the idle part.
func processCPUTime() (time.Duration, bool) {
	s := []rtmetrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindFloat64 || s[1].Value.Kind() != rtmetrics.KindFloat64 {
		return 0, false
	}
	return time.Duration((s[0].Value.Float64() - s[1].Value.Float64()) * float64(time.Second)), true
}
