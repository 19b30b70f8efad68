// Package plot draws line charts as standalone SVG documents, for the
// figures committed beside BENCHMARKS.md and written by `dstream drill
// --plot`: a few series over one x axis, each on the left or the right y
// axis, and vertical marks for events (a fault, a restart). It depends on
// nothing and fetches nothing.
package plot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line: points (X[i], Y[i]), drawn against the left y axis,
// or the right one when Right is set.
type Series struct {
	Name  string
	X, Y  []float64
	Color string // any SVG color; default one of a small palette
	Right bool
}

// Mark is a vertical line at X with a label: an event on the x axis.
type Mark struct {
	X     float64
	Label string
}

// Chart is a line chart. Axes start at zero and end at a round number
// above the largest value.
type Chart struct {
	Title                   string
	XLabel, YLabel, Y2Label string
	Series                  []Series
	Marks                   []Mark
	Width, Height           int // default 900 x 360
}

var palette = []string{"#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df"}

// SVG writes the chart as an SVG document to w.
func (c Chart) SVG(w io.Writer) error {
	width, height := c.Width, c.Height
	if width <= 0 {
		width = 900
	}
	if height <= 0 {
		height = 360
	}
	const left, right, top, bottom = 70.0, 70.0, 40.0, 50.0
	pw, ph := float64(width)-left-right, float64(height)-top-bottom
	var xmax, ymax, y2max float64
	for _, s := range c.Series {
		for i := range min(len(s.X), len(s.Y)) {
			xmax = max(xmax, s.X[i])
			if s.Right {
				y2max = max(y2max, s.Y[i])
			} else {
				ymax = max(ymax, s.Y[i])
			}
		}
	}
	for _, m := range c.Marks {
		xmax = max(xmax, m.X)
	}
	xmax, ymax, y2max = Ceil(xmax), Ceil(ymax), Ceil(y2max)
	px := func(x float64) float64 { return left + x/xmax*pw }
	py := func(y, top2 float64) float64 { return top + ph - y/top2*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(c.Title))
	// Grid and axes: five steps on each axis.
	for i := 0; i <= 5; i++ {
		y := top + ph - float64(i)/5*ph
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#e5e7eb"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%s</text>`+"\n", left-6, y+4, Number(ymax*float64(i)/5))
		if y2max > 0 {
			fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text>`+"\n", left+pw+6, y+4, Number(y2max*float64(i)/5))
		}
		x := left + float64(i)/5*pw
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", x, top+ph+18, Number(xmax*float64(i)/5))
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#6b7280"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, float64(height)-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(c.YLabel))
	if y2max > 0 {
		fmt.Fprintf(&b, `<text transform="translate(%g %g) rotate(90)" text-anchor="middle">%s</text>`+"\n", float64(width)-14, top+ph/2, html.EscapeString(c.Y2Label))
	}
	for _, m := range c.Marks {
		x := px(m.X)
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#9ca3af" stroke-dasharray="4 3"/>`+"\n", x, top, x, top+ph)
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" fill="#4b5563">%s</text>`+"\n", x+3, top+10, html.EscapeString(m.Label))
	}
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		top2 := ymax
		if s.Right {
			top2 = y2max
		}
		var pts []string
		for j := range min(len(s.X), len(s.Y)) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j], top2)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="12" height="3" fill="%s"/><text x="%g" y="%g">%s</text>`+"\n",
			left+pw-220, top+14+float64(i)*16, color, left+pw-204, top+19+float64(i)*16, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Ceil rounds x up to 1, 2, 2.5 or 5 times a power of ten (1 for x <= 0),
// so an axis ends at a round number.
func Ceil(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if x <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// Number formats an axis value: an integer when it is one, else with up to
// two decimals, large values with k or M.
func Number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e4:
		return trim(fmt.Sprintf("%.2f", v/1e3)) + "k"
	}
	return trim(fmt.Sprintf("%.2f", v))
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
