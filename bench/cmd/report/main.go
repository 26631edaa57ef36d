// Command report runs the bench module's overhead benchmarks — bulwark
// next to failsafe-go, sentinel-golang, sony/gobreaker and x/time/rate, with
// the no-op and an SDK MeterProvider — at least six times each, summarizes
// them with golang.org/x/perf's benchfmt and benchmath (medians and 95 %
// confidence intervals) and writes the tables into RESULTS.md, between its
// report markers, keeping the raw output beside it (RESULTS.bench.txt,
// readable by benchstat).
//
//	go run ./cmd/report                  # -count 6 -benchtime 20000x, a few minutes
//	go run ./cmd/report -bench 'Stack|HTTP'
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/bench/report"
	"github.com/bulwark-go/bulwark/bench/scenarios"
)

const (
	begin = "<!-- report:begin -->"
	end   = "<!-- report:end -->"
)

func main() {
	count := flag.Int("count", 6, "runs of each benchmark (at least 6 for an interval)")
	benchtime := flag.String("benchtime", "20000x", "go test -benchtime")
	bench := flag.String("bench", ".", "go test -bench")
	out := flag.String("out", "RESULTS.md", "the results file to update")
	in := flag.String("in", "", "read benchmark output from this file instead of running go test")
	flag.Parse()
	if *count < 6 && *in == "" {
		fmt.Fprintln(os.Stderr, "report: -count must be at least 6")
		os.Exit(2)
	}

	var raw []byte
	var err error
	if *in != "" {
		raw, err = os.ReadFile(*in)
	} else {
		raw, err = run(*bench, *benchtime, *count)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	rep, err := report.Parse(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "## Overhead in process\n\n")
	fmt.Fprintf(&md, "`go run ./cmd/report` in `bench/`: `go test -run ^$ -bench %s -benchtime %s -count %d`, %s, %s/%s, CPU %q, %d CPUs, %s. "+
		"Medians with their 95 %% confidence interval (benchmath, assuming nothing about the distribution); ratios divide medians "+
		"by the comparison's first bulwark column. `…/sdk` columns run bulwark with an OpenTelemetry SDK MeterProvider installed "+
		"(the other bulwark columns: the global no-op one; the peers record no metrics). The machine is shared: compare ratios within this run, "+
		"not absolute figures across runs. Raw output: [RESULTS.bench.txt](RESULTS.bench.txt).\n\n",
		*bench, *benchtime, *count, time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, rep.Config["cpu"], runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&md, "### Targets\n\n")
	report.TargetsMarkdown(&md, rep.Targets())
	rep.Markdown(&md)

	old, err := os.ReadFile(*out)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	doc := string(old)
	if doc == "" {
		doc = "# bench results\n\nWritten by `go run ./cmd/report` (overhead) and `go run ./cmd/scenarios` (under fire); see README.md.\n"
	}
	doc = scenarios.Splice(doc, begin, end, md.String())
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	if *in == "" {
		if err := os.WriteFile(filepath.Join(filepath.Dir(*out), "RESULTS.bench.txt"), raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintln(os.Stderr, "report: wrote", *out)
}

// run runs the benchmarks of the bench module (the working directory).
func run(bench, benchtime string, count int) ([]byte, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", bench, "-benchtime", benchtime, "-count", fmt.Sprint(count), ".")
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test: %w", err)
	}
	if !strings.Contains(out.String(), "Benchmark") {
		return nil, fmt.Errorf("go test printed no benchmark")
	}
	return out.Bytes(), nil
}
