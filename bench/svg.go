package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// SVG plot geometry, in pixels.
const (
	svgW, svgH                   = 960, 540
	svgLeft, svgRight            = 80, 30
	svgTop, svgBottom            = 60, 70
	svgStepsPerDecade            = 50
	svgMinDecades, svgMaxDecades = 2, 7
)

var svgColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// WriteSVG draws the latency distributions of r as HdrHistogram's plots do:
// latency against percentile, the percentile axis logarithmic in
// 1/(1−p), so that 90 %, 99 %, 99.9 % … are evenly spaced and the tail
// gets as much room as the median.
func (r *Result) WriteSVG(w io.Writer) error {
	type curve struct {
		name   string
		pts    [][2]float64 // decades (log10 of 1/(1-p)), milliseconds
		legend string
	}
	var curves []curve
	decades, top := float64(svgMinDecades), 0.0
	for i, s := range r.Series {
		h := r.hists[i]
		// The time to connect is on another scale than message latency:
		// drawn only when it is the main series (idle).
		if h == nil || h.TotalCount() == 0 || (i > 0 && s.Name == "connect") {
			continue
		}
		pts := percentileCurve(h)
		decades = max(decades, math.Ceil(pts[len(pts)-1][0]))
		top = max(top, s.MaxMs)
		curves = append(curves, curve{name: s.Name, pts: pts,
			legend: fmt.Sprintf("%s: p50 %s, p99 %s, p99.9 %s, max %s ms (%s samples)",
				s.Name, ms(s.P50ms), ms(s.P99ms), ms(s.P999ms), ms(s.MaxMs), group(float64(s.Count)))})
	}
	decades = min(decades, svgMaxDecades)
	top = niceCeil(top)
	plotW, plotH := float64(svgW-svgLeft-svgRight), float64(svgH-svgTop-svgBottom)
	x := func(d float64) float64 { return svgLeft + min(d, decades)/decades*plotW }
	y := func(v float64) float64 { return svgTop + plotH - v/top*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	title := fmt.Sprintf("ferry-bench %s: %s connections, %s B, %s loop, %s msgs/s", r.Scenario,
		group(float64(r.Connections)), group(float64(r.Size)), r.Loop, group(r.MsgsPerSec))
	if r.Scenario == "idle" {
		title = fmt.Sprintf("ferry-bench idle: time to open each of %s connections", group(float64(r.Connections)))
		if r.BytesPerConn > 0 {
			title += fmt.Sprintf(" (server: %s B/conn)", group(r.BytesPerConn))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", svgLeft, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="42" fill="#555">Latency by percentile (HdrHistogram, %s)</text>`+"\n", svgLeft, html.EscapeString(r.Addr))

	// Grid and axes.
	for d := 0; d <= int(decades); d++ {
		px := x(float64(d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px, svgTop, px, svgTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px, svgTop+plotH+18, percentileLabel(d))
	}
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		py := y(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", svgLeft, py, svgLeft+plotW, py)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-8, py+4, tickLabel(v, top/5))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", svgLeft, svgTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">Percentile</text>`+"\n", svgLeft+plotW/2, svgH-28)
	fmt.Fprintf(&b, `<text transform="translate(22 %.1f) rotate(-90)" text-anchor="middle">Latency (ms)</text>`+"\n", svgTop+plotH/2)

	for i, c := range curves {
		color := svgColors[i%len(svgColors)]
		b.WriteString(`<polyline fill="none" stroke-width="2" stroke="` + color + `" points="`)
		for j, p := range c.pts {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p[0]), y(p[1]))
		}
		b.WriteString(`"><title>` + html.EscapeString(c.name) + "</title></polyline>\n")
		ly := svgTop + 16 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", svgLeft+12, ly-4, svgLeft+36, ly-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", svgLeft+42, ly, html.EscapeString(c.legend))
	}
	if len(curves) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">no samples</text>`+"\n", svgLeft+plotW/2, svgTop+plotH/2)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// percentileCurve samples h at evenly spaced decades of 1/(1−p) up to the
// resolution the sample count supports (p = 1 − 1/count), then ends at the
// maximum.
func percentileCurve(h *hdrhistogram.Histogram) [][2]float64 {
	n := float64(h.TotalCount())
	last := min(math.Log10(max(n, 1)), svgMaxDecades)
	var pts [][2]float64
	for i := 0; ; i++ {
		d := float64(i) / svgStepsPerDecade
		if d >= last {
			break
		}
		q := 100 * (1 - math.Pow(10, -d))
		pts = append(pts, [2]float64{d, float64(h.ValueAtPercentile(q)) / 1e6})
	}
	return append(pts, [2]float64{max(last, 1.0/svgStepsPerDecade), float64(h.Max()) / 1e6})
}

// percentileLabel names the percentile d decades out: 0 %, 90 %, 99 %,
// 99.9 % …
func percentileLabel(d int) string {
	switch d {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", d-2) + "%"
}

// tickLabel formats v with as many decimals as the tick step needs.
func tickLabel(v, step float64) string {
	dec := max(0, int(-math.Floor(math.Log10(step))))
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
