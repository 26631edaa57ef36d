// Package report turns the bench module's benchmark output into the
// tables of RESULTS.md: one table per comparison, every implementation a
// column, with medians and 95 % confidence intervals (golang.org/x/perf's
// benchfmt and benchmath) and ratios to bulwark.
package report

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// key is one benchmark: its comparison, implementation and whether it ran
// on GOMAXPROCS goroutines.
type key struct {
	group, impl string
	parallel    bool
}

// Report is the parsed output of `go test -bench` in the bench module.
type Report struct {
	order   []key
	samples map[key]map[string][]float64 // unit → values
	Config  map[string]string            // goos, goarch, cpu, pkg
}

// Parse reads benchmark output in the Go benchmark format.
func Parse(r io.Reader) (*Report, error) {
	rep := &Report{samples: map[key]map[string][]float64{}, Config: map[string]string{}}
	br := benchfmt.NewReader(r, "bench")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		for _, c := range res.Config {
			if c.File {
				rep.Config[c.Key] = string(c.Value)
			}
		}
		k, ok := parseName(string(res.Name.Full()))
		if !ok {
			continue
		}
		if _, seen := rep.samples[k]; !seen {
			rep.samples[k] = map[string][]float64{}
			rep.order = append(rep.order, k)
		}
		for _, v := range res.Values {
			rep.samples[k][v.Unit] = append(rep.samples[k][v.Unit], v.Value)
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	if len(rep.order) == 0 {
		return nil, fmt.Errorf("report: no benchmark results in the input")
	}
	return rep, nil
}

// parseName splits "Stack/bulwark.Chain/parallel-2" (with or without the
// Benchmark prefix) into its comparison, implementation and parallelism.
func parseName(name string) (key, bool) {
	name = strings.TrimPrefix(name, "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 && !strings.ContainsAny(name[i+1:], "/.") {
		name = name[:i] // the GOMAXPROCS suffix
	}
	group, impl, ok := strings.Cut(name, "/")
	if !ok {
		return key{group: name, impl: name}, true
	}
	k := key{group: group, impl: impl}
	if s, found := strings.CutSuffix(impl, "/parallel"); found {
		k.impl, k.parallel = s, true
	}
	return k, true
}

// summary is the median of unit over the sample and its 95 % interval.
func (r *Report) summary(k key, unit string) (benchmath.Summary, bool) {
	vals := r.samples[k][unit]
	if len(vals) == 0 {
		return benchmath.Summary{}, false
	}
	s := benchmath.NewSample(vals, &benchmath.DefaultThresholds)
	return benchmath.AssumeNothing.Summary(s, 0.95), true
}

// Groups lists the comparisons in the order they ran.
func (r *Report) Groups() []string {
	var out []string
	for _, k := range r.order {
		if !slices.Contains(out, k.group) {
			out = append(out, k.group)
		}
	}
	return out
}

// impls lists a comparison's implementations in the order they ran.
func (r *Report) impls(group string) []string {
	var out []string
	for _, k := range r.order {
		if k.group == group && !slices.Contains(out, k.impl) {
			out = append(out, k.impl)
		}
	}
	return out
}

// baseline is the implementation a comparison's ratios divide by: its
// first bulwark one.
func (r *Report) baseline(group string) string {
	for _, impl := range r.impls(group) {
		if strings.HasPrefix(impl, "bulwark") {
			return impl
		}
	}
	return ""
}

// Ratio returns center(impl) / center(baseline) of unit in group, on one
// goroutine or in parallel.
func (r *Report) Ratio(group, impl, unit string, parallel bool) (float64, bool) {
	a, ok1 := r.summary(key{group, impl, parallel}, unit)
	b, ok2 := r.summary(key{group, r.baseline(group), parallel}, unit)
	if !ok1 || !ok2 || b.Center == 0 {
		return 0, false
	}
	return a.Center / b.Center, true
}

// Center returns the median of unit for impl in group.
func (r *Report) Center(group, impl, unit string, parallel bool) (float64, bool) {
	s, ok := r.summary(key{group, impl, parallel}, unit)
	return s.Center, ok
}

// Markdown writes one table per comparison: a column per implementation;
// rows for ns/op (median and 95 % interval), B/op, allocs/op and the ratio
// to bulwark, on one goroutine and on all.
func (r *Report) Markdown(w io.Writer) {
	for _, g := range r.Groups() {
		impls := r.impls(g)
		base := r.baseline(g)
		fmt.Fprintf(w, "### %s\n\n", g)
		fmt.Fprintf(w, "| | %s |\n", strings.Join(quoteAll(impls), " | "))
		fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(impls)))
		row := func(label string, cell func(impl string) string) {
			cells := make([]string, len(impls))
			for i, impl := range impls {
				cells[i] = cell(impl)
			}
			fmt.Fprintf(w, "| %s | %s |\n", label, strings.Join(cells, " | "))
		}
		for _, par := range []bool{false, true} {
			suffix := ", 1 goroutine"
			if par {
				suffix = ", parallel"
			}
			row("ns/op"+suffix, func(impl string) string {
				s, ok := r.summary(key{g, impl, par}, "sec/op")
				if !ok {
					return "–"
				}
				if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) {
					return fmt.Sprintf("%s (too few runs for an interval)", ns(s.Center))
				}
				return fmt.Sprintf("%s (%s–%s)", ns(s.Center), ns(s.Lo), ns(s.Hi))
			})
			row("× bulwark"+suffix, func(impl string) string {
				v, ok := r.Ratio(g, impl, "sec/op", par)
				if !ok {
					return "–"
				}
				if impl == base {
					return "**1.00**"
				}
				return fmt.Sprintf("%.2f", v)
			})
		}
		for _, u := range []struct{ unit, label string }{{"B/op", "B/op"}, {"allocs/op", "allocs/op"}} {
			row(u.label, func(impl string) string {
				v, ok := r.Center(g, impl, u.unit, false)
				if !ok {
					return "–"
				}
				return fmt.Sprintf("%.0f", v)
			})
		}
		fmt.Fprintln(w)
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}

// ns formats seconds as nanoseconds.
func ns(sec float64) string {
	v := sec * 1e9
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Target is one of the published targets, checked against the figures.
type Target struct {
	What, Want, Got string
	Met             bool
}

// Targets checks the overhead targets of the bench issue: composition ≤
// 0.2× failsafe-go's ns/op at ≤ 1 allocation; HTTP added overhead ≤ 0.2×
// failsafehttp's.
func (r *Report) Targets() []Target {
	var out []Target
	if v, ok := r.Ratio("Stack", "failsafe.Run", "sec/op", false); ok {
		inv := 1 / v
		allocs, _ := r.Center("Stack", "bulwark.Chain", "allocs/op", false)
		out = append(out, Target{"stack (composition) vs failsafe-go, 1 goroutine", "≤ 0.2× ns/op, ≤ 1 alloc",
			fmt.Sprintf("%.2f×, %.0f allocs", inv, allocs), inv <= 0.2 && allocs <= 1})
	}
	if v, ok := r.Ratio("Stack", "failsafe.Run", "sec/op", true); ok {
		inv := 1 / v
		out = append(out, Target{"stack (composition) vs failsafe-go, parallel", "≤ 0.2× ns/op", fmt.Sprintf("%.2f×", inv), inv <= 0.2})
	}
	bare, ok1 := r.Center("HTTP", "bare", "sec/op", false)
	bw, ok2 := r.Center("HTTP", "bulwarkhttp.Middleware", "sec/op", false)
	fs, ok3 := r.Center("HTTP", "failsafehttp.NewHandler", "sec/op", false)
	if ok1 && ok2 && ok3 && fs > bare {
		added := (bw - bare) / (fs - bare)
		ba, _ := r.Center("HTTP", "bare", "allocs/op", false)
		wa, _ := r.Center("HTTP", "bulwarkhttp.Middleware", "allocs/op", false)
		out = append(out, Target{"HTTP middleware: added ns/op vs failsafehttp's added", "≤ 0.2×",
			fmt.Sprintf("%.2f× (%s vs %s ns added; %.0f allocs added)", added, ns(bw-bare), ns(fs-bare), wa-ba), added <= 0.2})
	}
	var over []string
	worst := 0.0
	for _, impl := range r.impls("Refusal") {
		if !strings.HasPrefix(impl, "bulwark") {
			continue
		}
		v, ok := r.Center("Refusal", impl, "sec/op", false)
		if !ok {
			continue
		}
		worst = max(worst, v)
		if v > 100e-9 {
			over = append(over, fmt.Sprintf("%s %s ns", impl, ns(v)))
		}
	}
	if worst > 0 {
		got := fmt.Sprintf("slowest %s ns", ns(worst))
		if len(over) > 0 {
			got += "; over: " + strings.Join(over, ", ")
		}
		out = append(out, Target{"refusals, each bulwark policy, 1 goroutine", "≤ 100 ns", got, len(over) == 0})
	}
	return out
}

// TargetsMarkdown writes the targets as a table.
func TargetsMarkdown(w io.Writer, ts []Target) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "| target | want | got | met |\n|---|---|---|---|\n")
	for _, t := range ts {
		met := "**no**"
		if t.Met {
			met = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.What, t.Want, t.Got, met)
	}
	b.WriteString("\n")
	_, _ = w.Write(b.Bytes())
}
