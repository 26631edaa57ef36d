package report

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/bulwark-go/bulwark/bench
cpu: Test CPU
BenchmarkStack/bulwark.Chain-2         	  100000	       500 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain-2         	  100000	       520 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain-2         	  100000	       480 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain-2         	  100000	       490 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain-2         	  100000	       510 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain-2         	  100000	       505 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/bulwark.Chain/parallel-2	  100000	       300 ns/op	      48 B/op	       1 allocs/op
BenchmarkStack/failsafe.Run-2          	  100000	      3000 ns/op	     800 B/op	      21 allocs/op
BenchmarkStack/failsafe.Run-2          	  100000	      3100 ns/op	     800 B/op	      21 allocs/op
BenchmarkStack/failsafe.Run-2          	  100000	      2900 ns/op	     800 B/op	      21 allocs/op
BenchmarkStack/failsafe.Run/parallel-2 	  100000	      1200 ns/op	     800 B/op	      21 allocs/op
BenchmarkBreaker/gobreaker.Execute/window-2	  100000	  200 ns/op	       0 B/op	       0 allocs/op
BenchmarkBreaker/bulwark.Do-2          	  100000	       250 ns/op	      48 B/op	       1 allocs/op
BenchmarkRefusal/bulwark.breaker-2     	  100000	        10 ns/op	       0 B/op	       0 allocs/op
BenchmarkRefusal/bulwark.ratelimit-2   	  100000	       120 ns/op	       0 B/op	       0 allocs/op
BenchmarkRefusal/rate.Allow-2          	  100000	       500 ns/op	       0 B/op	       0 allocs/op
BenchmarkHTTP/bare-2                   	  100000	      1000 ns/op	    1000 B/op	       9 allocs/op
BenchmarkHTTP/bulwarkhttp.Middleware-2 	  100000	      1100 ns/op	    1100 B/op	      10 allocs/op
BenchmarkHTTP/failsafehttp.NewHandler-2	  100000	      3000 ns/op	    2300 B/op	      33 allocs/op
`

func TestReport(t *testing.T) {
	r, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Groups(), ","); got != "Stack,Breaker,Refusal,HTTP" {
		t.Errorf("Groups() = %s, want Stack,Breaker,Refusal,HTTP", got)
	}
	if v, ok := r.Ratio("Stack", "failsafe.Run", "sec/op", false); !ok || v < 5.9 || v > 6.1 {
		t.Errorf("Ratio(failsafe.Run) = %v, %v, want 6 (3000 / 502.5 medians)", v, ok)
	}
	if v, ok := r.Ratio("Stack", "failsafe.Run", "sec/op", true); !ok || v != 4 {
		t.Errorf("parallel ratio = %v, %v, want 4", v, ok)
	}
	// A name with a slash inside the implementation.
	if _, ok := r.Center("Breaker", "gobreaker.Execute/window", "sec/op", false); !ok {
		t.Error("gobreaker.Execute/window not parsed as one implementation")
	}
	// The baseline is the first bulwark implementation, not the first row.
	if v, _ := r.Ratio("Breaker", "gobreaker.Execute/window", "sec/op", false); v < 0.7999 || v > 0.8001 {
		t.Errorf("Breaker ratio = %v, want 0.8 (200 / 250)", v)
	}
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{"### Stack", "| | `bulwark.Chain` | `failsafe.Run` |", "| ns/op, 1 goroutine | 503 (480–520) |", "| 3000 (too few runs for an interval) |", "**1.00**", "| allocs/op | 1 | 21 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	ts := r.Targets()
	if len(ts) != 4 {
		t.Fatalf("Targets() = %d targets, want 4: %+v", len(ts), ts)
	}
	if !ts[0].Met || ts[1].Met || !ts[2].Met || ts[3].Met {
		t.Errorf("Targets() met = %v %v %v %v, want true (0.17×) false (0.25×) true (0.05× added) false (ratelimit 120 ns)", ts[0].Met, ts[1].Met, ts[2].Met, ts[3].Met)
	}
	if !strings.Contains(ts[3].Got, "bulwark.ratelimit 120 ns") || strings.Contains(ts[3].Got, "rate.Allow") {
		t.Errorf("refusal target = %q, want only bulwark's slow refusal named", ts[3].Got)
	}
	if r.Config["cpu"] != "Test CPU" {
		t.Errorf("Config[cpu] = %q, want Test CPU", r.Config["cpu"])
	}
}

func TestParseEmpty(t *testing.T) {
	if _, err := Parse(strings.NewReader("PASS\nok x 0.1s\n")); err == nil {
		t.Error("Parse() of output without results = nil error")
	}
}
