package scenarios

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Table is one scenario's result, rendered as Markdown.
type Table struct {
	Title  string
	Intro  string
	Header []string
	Rows   [][]string
	Notes  []string
}

// Markdown writes t as a Markdown section.
func (t Table) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.Title)
	if t.Intro != "" {
		fmt.Fprintf(w, "%s\n\n", t.Intro)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.Header, " | "))
	seps := make([]string, len(t.Header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
	for _, n := range t.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(t.Notes) > 0 {
		fmt.Fprintln(w)
	}
}

// Series is one line (or one group of bars) of a chart.
type Series struct {
	Name   string
	Points [][2]float64 // x, y
}

// Chart is a small SVG line or bar chart: enough to publish the
// scenarios' figures beside RESULTS.md without a plotting dependency.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Bars                  bool     // a bar per series at each x category
	XCategories           []string // bar charts: the labels of x = 0, 1, …
	YMax                  float64  // 0: from the data
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// SVG writes c as a standalone SVG document.
func (c Chart) SVG(w io.Writer) {
	const W, H, left, right, top, bottom = 860.0, 420.0, 70.0, 330.0, 40.0, 60.0
	pw, ph := W-left-right, H-top-bottom
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), c.YMax
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			if c.YMax == 0 {
				ymax = math.Max(ymax, p[1])
			}
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	if c.YMax == 0 {
		ymax = niceCeil(ymax)
	}
	if c.Bars {
		xmin, xmax = -0.5, float64(len(c.XCategories))-0.5
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	sx := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*pw }
	sy := func(y float64) float64 { return top + ph - y/ymax*ph }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(c.Title))
	// Axes and grid.
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(w, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, sy(y), left+pw, sy(y))
		fmt.Fprintf(w, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, sy(y)+4, trim(y))
	}
	fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, H-15, html.EscapeString(c.XLabel))
	fmt.Fprintf(w, `<text x="18" y="%g" text-anchor="middle" transform="rotate(-90 18 %g)">%s</text>`+"\n", top+ph/2, top+ph/2, html.EscapeString(c.YLabel))
	if c.Bars {
		for i, cat := range c.XCategories {
			fmt.Fprintf(w, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", sx(float64(i)), top+ph+18, html.EscapeString(cat))
		}
		// Series that share no x get one full-width bar each.
		shared := map[float64]int{}
		for _, s := range c.Series {
			for _, p := range s.Points {
				shared[p[0]]++
			}
		}
		n := 1.0
		for _, k := range shared {
			n = math.Max(n, float64(k))
		}
		bw := pw / float64(max(1, len(c.XCategories))) * 0.8 / n
		for si, s := range c.Series {
			slot := float64(si)
			if n == 1 {
				slot = 0
			}
			for _, p := range s.Points {
				x := sx(p[0]) - bw*n/2 + bw*slot
				fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
					x, sy(p[1]), bw, top+ph-sy(p[1]), palette[si%len(palette)], html.EscapeString(s.Name), trim(p[1]))
			}
		}
	} else {
		xs := map[float64]bool{}
		for _, s := range c.Series {
			for _, p := range s.Points {
				xs[p[0]] = true
			}
		}
		for x := range xs {
			fmt.Fprintf(w, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", sx(x), top+ph+18, trim(x))
		}
		for si, s := range c.Series {
			var pts []string
			for _, p := range s.Points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(p[0]), sy(p[1])))
			}
			col := palette[si%len(palette)]
			fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
			for _, p := range s.Points {
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s</title></circle>`+"\n", sx(p[0]), sy(p[1]), col, html.EscapeString(s.Name), trim(p[1]))
			}
		}
	}
	for si, s := range c.Series {
		y := top + 10 + float64(si)*20
		fmt.Fprintf(w, `<rect x="%g" y="%g" width="12" height="12" fill="%s"/>`+"\n", left+pw+15, y, palette[si%len(palette)])
		fmt.Fprintf(w, `<text x="%g" y="%g">%s</text>`+"\n", left+pw+32, y+10, html.EscapeString(s.Name))
	}
	fmt.Fprintln(w, `</svg>`)
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
