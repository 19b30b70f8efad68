package plot

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {0.7, 1}, {1, 1}, {1.1, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {10, 10}, {11, 20}, {240, 250}, {251, 500}, {0.03, 0.05},
	} {
		if got := Ceil(c.in); got != c.want {
			t.Errorf("Ceil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{0, "0"}, {2.5, "2.5"}, {100, "100"}, {12000, "12k"}, {2500000, "2.5M"}, {0.126, "0.13"}} {
		if got := Number(c.in); got != c.want {
			t.Errorf("Number(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The SVG is well-formed XML with one polyline per series, one dashed line
// per mark, and the text escaped.
func TestSVG(t *testing.T) {
	var b strings.Builder
	c := Chart{Title: "rate & delay <test>", XLabel: "s", YLabel: "records/s", Y2Label: "ms",
		Series: []Series{{Name: "rate", X: []float64{0, 1, 2}, Y: []float64{10, 20, 15}}, {Name: "delay", X: []float64{0, 1, 2}, Y: []float64{5, 1, 0}, Right: true}},
		Marks:  []Mark{{X: 1, Label: "kill"}}}
	if err := c.SVG(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(b.String()))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	if counts["svg"] != 1 || counts["polyline"] != 2 {
		t.Errorf("elements %v; want one svg and two polylines", counts)
	}
	if !strings.Contains(b.String(), "rate &amp; delay &lt;test&gt;") || !strings.Contains(b.String(), `stroke-dasharray="4 3"`) {
		t.Errorf("title not escaped or mark missing:\n%s", b.String())
	}
}
