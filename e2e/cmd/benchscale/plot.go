package main

import (
	"cmp"
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                       = 800, 420
	marginL, marginR, marginT, marginB = 70, 230, 40, 60
)

var seriesColor = map[string]string{"sluice": "#0f766e", "flagger": "#c2410c"}

// point is one N of one controller: release time p50 and range, × the schedule.
type point struct {
	n             int
	p50, min, max float64
}

// plot draws release time (× schedule) against N, one line per controller through the p50s with
// bars from min to max, on a log scale of N, and the schedule itself (1×) as a dashed line.
func plot(runs []summary) string {
	series := map[string][]point{}
	var order []string
	color, dashed := map[string]string{}, map[string]bool{}
	for _, s := range runs {
		if s.Release.Count == 0 || s.ScheduleSeconds <= 0 {
			continue
		}
		name := s.series()
		if _, ok := series[name]; !ok {
			order = append(order, name)
			color[name], dashed[name] = cmp.Or(seriesColor[s.Controller], "#555"), s.ControlPlaneQPS > 0
		}
		k := s.ScheduleSeconds
		series[name] = append(series[name], point{s.N, s.Release.P50 / k, s.Release.Min / k, s.Release.Max / k})
	}
	var ns []int
	ymax := 1.0
	for _, c := range order {
		slices.SortFunc(series[c], func(a, b point) int { return a.n - b.n })
		for _, p := range series[c] {
			ns = append(ns, p.n)
			ymax = max(ymax, p.max)
		}
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	if len(ns) == 0 {
		ns = []int{10, 1000}
	}
	lo, hi := math.Log10(float64(ns[0]))-0.15, math.Log10(float64(ns[len(ns)-1]))+0.15
	step := niceStep(ymax * 1.1 / 5)
	ytop := math.Ceil(ymax*1.1/step) * step
	x := func(n int) float64 {
		return marginL + (math.Log10(float64(n))-lo)/(hi-lo)*(plotW-marginL-marginR)
	}
	y := func(v float64) float64 { return plotH - marginB - v/ytop*(plotH-marginT-marginB) }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="22" font-size="14" font-weight="bold">Release time vs concurrent releases (p50; bars: min–max)</text>`+"\n", marginL)
	// Axes, grid and ticks.
	p(`<g stroke="#ddd">`)
	for v := 0.0; v <= ytop+step/2; v += step {
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, marginL, y(v), plotW-marginR, y(v))
	}
	p("</g>\n")
	p(`<g stroke="#333"><line x1="%d" y1="%d" x2="%d" y2="%d"/><line x1="%d" y1="%d" x2="%d" y2="%d"/></g>`+"\n",
		marginL, plotH-marginB, plotW-marginR, plotH-marginB, marginL, marginT, marginL, plotH-marginB)
	for v := 0.0; v <= ytop+step/2; v += step {
		p(`<text x="%d" y="%.1f" text-anchor="end" dy=".35em">%s×</text>`+"\n", marginL-6, y(v), trimFloat(v))
	}
	for _, n := range ns {
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`, x(n), plotH-marginB, x(n), plotH-marginB+5)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(n), plotH-marginB+18, n)
	}
	p(`<text x="%d" y="%d" text-anchor="middle">concurrent releases N (log scale)</text>`+"\n", (marginL+plotW-marginR)/2, plotH-15)
	p(`<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">release time ÷ 30 s schedule</text>`+"\n", (marginT+plotH-marginB)/2)
	// The schedule: a release can not be faster than 1×.
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" stroke-dasharray="5 4"/>`, marginL, y(1), plotW-marginR, y(1))
	p(`<text x="%d" y="%.1f" fill="#666" dy=".35em">schedule (1×)</text>`+"\n", plotW-marginR+6, y(1))
	// One line per controller (dashed where the control plane's client limits were raised).
	for i, c := range order {
		pts := series[c]
		dash := ""
		if dashed[c] {
			dash = ` stroke-dasharray="6 3"`
		}
		p(`<g class="series" data-controller="%s" stroke="%s" fill="%s">`+"\n", html.EscapeString(c), color[c], color[c])
		var line []string
		for _, pt := range pts {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x(pt.n), y(pt.p50)))
		}
		p(`<polyline fill="none" stroke-width="2"%s points="%s"/>`+"\n", dash, strings.Join(line, " "))
		// The controllers' bars stand a little apart so that ranges at the same N do not hide
		// each other.
		dx := 5 * (float64(i) - float64(len(order)-1)/2)
		for _, pt := range pts {
			bx := x(pt.n) + dx
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, bx, y(pt.min), bx, y(pt.max))
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, bx-4, y(pt.min), bx+4, y(pt.min))
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, bx-4, y(pt.max), bx+4, y(pt.max))
			p(`<circle cx="%.1f" cy="%.1f" r="4"><title>%s N=%d: p50 %.2f×, min %.2f×, max %.2f×</title></circle>`+"\n",
				x(pt.n), y(pt.p50), html.EscapeString(c), pt.n, pt.p50, pt.min, pt.max)
		}
		ly := marginT + 10 + i*20
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke-width="2"%s/>`, plotW-marginR+6, ly, plotW-marginR+26, ly, dash)
		p(`<text x="%d" y="%d" stroke="none" dy=".35em">%s</text>`+"\n", plotW-marginR+32, ly, html.EscapeString(c))
		p("</g>\n")
	}
	p("</svg>\n")
	return b.String()
}

// niceStep rounds a raw axis step up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
