package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// panel is one small chart: series of (x, y) points over shared axes.
type panel struct {
	title  string
	unit   string
	series []series
	xTicks []tick // nil: five evenly spaced numeric ticks
	xUnit  string
	logY   bool // powers of ten from 1 up; values below 1 sit on the axis
}

type series struct {
	name  string
	color string
	dash  bool
	pts   [][2]float64
}

type tick struct {
	x     float64
	label string
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// svgChart draws panels side by side, cols per row, as one static SVG (no
// script): axes, grid, a polyline and dots per series, a legend.
func svgChart(title string, cols int, panels []panel) string {
	const pw, ph, ml, mr, mt, mb = 460.0, 320.0, 64.0, 16.0, 48.0, 96.0
	rows := (len(panels) + cols - 1) / cols
	w, h := pw*float64(cols), ph*float64(rows)+36
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", w/2, html.EscapeString(title))
	for i, p := range panels {
		ox, oy := pw*float64(i%cols), 36+ph*float64(i/cols)
		x0, x1, y0, y1 := ox+ml, ox+pw-mr, oy+ph-mb, oy+mt
		minX, maxX, maxY := math.Inf(1), math.Inf(-1), 0.0
		for _, s := range p.series {
			for _, pt := range s.pts {
				minX, maxX, maxY = math.Min(minX, pt[0]), math.Max(maxX, pt[0]), math.Max(maxY, pt[1])
			}
		}
		if math.IsInf(minX, 1) {
			minX, maxX = 0, 1
		}
		if maxX == minX || p.xTicks != nil {
			// Labelled points (runs) keep clear of the panel's edges.
			minX, maxX = minX-0.4, maxX+0.4
		}
		sx := func(x float64) float64 { return x0 + (x-minX)/(maxX-minX)*(x1-x0) }
		var sy func(float64) float64
		var grid []float64
		if p.logY {
			top := math.Max(1, math.Ceil(math.Log10(math.Max(maxY, 1))))
			sy = func(y float64) float64 { return y0 - math.Log10(math.Max(y, 1))/top*(y0-y1) }
			for g := 0.0; g <= top; g++ {
				grid = append(grid, math.Pow(10, g))
			}
		} else {
			maxY = niceCeil(maxY * 1.05)
			sy = func(y float64) float64 { return y0 - y/maxY*(y0-y1) }
			for g := 0; g <= 4; g++ {
				grid = append(grid, maxY*float64(g)/4)
			}
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, oy+20, html.EscapeString(p.title))
		for _, y := range grid {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x0, sy(y), x1, sy(y))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", x0-4, sy(y)+4, fmtNum(y))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
			ox+14, (y0+y1)/2, ox+14, (y0+y1)/2, html.EscapeString(p.unit))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n",
			x0, y0, x1, y0, x0, y0, x0, y1)
		ticks := p.xTicks
		if ticks == nil {
			for t := 0; t <= 4; t++ {
				x := minX + (maxX-minX)*float64(t)/4
				ticks = append(ticks, tick{x, fmtNum(x)})
			}
		}
		for _, t := range ticks {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`+"\n", sx(t.x), y0+16, html.EscapeString(t.label))
		}
		if p.xUnit != "" {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`+"\n", (x0+x1)/2, y0+32, html.EscapeString(p.xUnit))
		}
		var lx float64
		for j, s := range p.series {
			c := s.color
			if c == "" {
				c = palette[j%len(palette)]
			}
			dash := ""
			if s.dash {
				dash = ` stroke-dasharray="5 3"`
			}
			if len(s.pts) > 0 {
				pts := make([]string, len(s.pts))
				for k, pt := range s.pts {
					pts[k] = fmt.Sprintf("%.1f,%.1f", sx(pt[0]), sy(pt[1]))
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", c, dash, strings.Join(pts, " "))
				if len(s.pts) <= 40 {
					for _, pt := range s.pts {
						fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, sx(pt[0]), sy(pt[1]), c)
					}
					b.WriteString("\n")
				}
			}
			ly := y0 + 44 + float64(j/2)*14
			if j%2 == 0 {
				lx = x0
			} else {
				lx = (x0 + x1) / 2
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				lx, ly-4, lx+18, ly-4, c, dash, lx+22, ly, html.EscapeString(s.name))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
