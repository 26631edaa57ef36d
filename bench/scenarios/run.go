package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Result is what a run produced: its Markdown and its charts.
type Result struct {
	Tables []Table
	Charts map[string]Chart // file name → chart
}

// Markdown renders every table, with the machine and the date.
func (r Result) Markdown(quick bool) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## Under fire: scenarios over real HTTP\n\n")
	mode := "full"
	if quick {
		mode = "quick (-quick: short runs, noisy)"
	}
	fmt.Fprintf(&b, "`go run ./cmd/scenarios` in `bench/`, %s run of %s on %s/%s, %d CPUs, %s. Real HTTP over loopback; "+
		"the load generator shares the machine with the servers.\n\n", mode, time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	for _, t := range r.Tables {
		t.Markdown(&b)
	}
	return b.String()
}

// Scenario is one scenario of a run.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, o Options, r *Result)
}

// All is every scenario, in the order they run and are reported.
var All = []Scenario{
	{"overload", func(ctx context.Context, o Options, r *Result) {
		t, c := Overload(ctx, o)
		r.Tables = append(r.Tables, t)
		r.Charts["goodput.svg"] = c
	}},
	{"outage", func(ctx context.Context, o Options, r *Result) {
		r.Tables = append(r.Tables, Outage(ctx, o))
	}},
	{"retry-storm", func(ctx context.Context, o Options, r *Result) {
		t, c := RetryStorm(ctx, o)
		r.Tables = append(r.Tables, t)
		r.Charts["amplification.svg"] = c
	}},
}

// Run runs the scenarios whose names are in only (all when only is empty).
func Run(ctx context.Context, o Options, only ...string) Result {
	r := Result{Charts: map[string]Chart{}}
	for _, s := range All {
		if len(only) > 0 && !contains(only, s.Name) {
			continue
		}
		o.logf("== %s", s.Name)
		s.Run(ctx, o, &r)
	}
	return r
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Markers delimit the scenarios' section of RESULTS.md, which cmd/report
// leaves alone.
const (
	BeginMarker = "<!-- scenarios:begin -->"
	EndMarker   = "<!-- scenarios:end -->"
)

// Splice replaces the text between begin and end in doc (appending the
// section when doc has none) and returns the new document.
func Splice(doc, begin, end, section string) string {
	block := begin + "\n" + section + end + "\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + block
	}
	return doc[:i] + block + strings.TrimPrefix(doc[j+len(end):], "\n")
}

// Write splices r's Markdown into the file at results and writes its
// charts beside it.
func Write(results string, r Result, quick bool) error {
	old, err := os.ReadFile(results)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	md := r.Markdown(quick)
	for name := range r.Charts {
		md += fmt.Sprintf("![%s](%s)\n\n", strings.TrimSuffix(name, ".svg"), name)
	}
	if err := os.WriteFile(results, []byte(Splice(string(old), BeginMarker, EndMarker, md)), 0o644); err != nil {
		return err
	}
	dir := filepath.Dir(results)
	for name, c := range r.Charts {
		var b bytes.Buffer
		c.SVG(&b)
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
