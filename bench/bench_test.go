package bench

import (
	"testing"
	"time"
)

func BenchmarkStack(b *testing.B)     { runGroup(b, "Stack") }
func BenchmarkBreaker(b *testing.B)   { runGroup(b, "Breaker") }
func BenchmarkBulkhead(b *testing.B)  { runGroup(b, "Bulkhead") }
func BenchmarkRateLimit(b *testing.B) { runGroup(b, "RateLimit") }
func BenchmarkRetry(b *testing.B)     { runGroup(b, "Retry") }
func BenchmarkHTTP(b *testing.B)      { runGroup(b, "HTTP") }

var sinkTime time.Time

// BenchmarkClock is one clock read, for scale: every policy reads the
// clock at least once per call, and on virtual machines a read can cost
// more than the rest of a policy's work.
func BenchmarkClock(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkTime = time.Now()
	}
}

// runGroup runs every scenario of the group on one goroutine, then on
// GOMAXPROCS goroutines (name/parallel).
func runGroup(b *testing.B, name string) {
	for _, s := range findGroup(b, name).scenarios {
		b.Run(s.name, func(b *testing.B) {
			op := s.setup(b)()
			b.ReportAllocs()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			worker := s.setup(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				op := worker()
				for pb.Next() {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func findGroup(tb testing.TB, name string) group {
	tb.Helper()
	for _, g := range groups {
		if g.name == name {
			return g
		}
	}
	tb.Fatalf("no group %q", name)
	return group{}
}
