package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// Series is one named set of per-class accuracies (fractions; NaN for a class
// without test examples).
type Series struct {
	Name   string
	Values []float64
}

// PerClassFigure draws per-class accuracy as grouped horizontal bars, one group per
// class (top to bottom in class order) and one bar per series, e.g. zero-shot
// against the linear probe. Every series must have one value per class name.
func PerClassFigure(title string, classNames []string, series []Series) (Figure, error) {
	n := len(classNames)
	if n == 0 || len(series) == 0 {
		return Figure{}, fmt.Errorf("plots: per-class accuracy %q: no classes or no series", title)
	}
	for _, s := range series {
		if len(s.Values) != n {
			return Figure{}, fmt.Errorf("plots: per-class accuracy %q: series %q has %d values for %d classes", title, s.Name, len(s.Values), n)
		}
	}
	// Each class gets a row of rowH; its bars fill 80% of it.
	rowH := vg.Length(math.Max(0.3, 0.13*float64(len(series))+0.06)) * vg.Inch
	barW := rowH * 0.8 / vg.Length(len(series))

	p := barPlot(title, "accuracy on the class's test images (%)", n)
	leg := newLegend()
	for i, s := range series {
		vals := make(plotter.Values, n)
		for j, v := range s.Values {
			if !math.IsNaN(v) {
				vals[j] = percent(v)
			}
		}
		b, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: per-class accuracy %q: %w", title, err)
		}
		b.Horizontal = true
		b.Color = colourAt(i)
		b.LineStyle.Width = 0
		// Offsets are in canvas units (up is positive) whatever the axis direction:
		// series 0 goes on top, in legend order.
		b.Offset = (vg.Length(len(series)-1)/2 - vg.Length(i)) * barW
		p.Add(b)
		leg.Add(s.Name, b)
	}
	names := make([]string, n)
	ticks := make([]plot.Tick, n)
	for i, name := range classNames {
		names[i] = shorten(name, 28)
		ticks[i] = plot.Tick{Value: float64(i), Label: names[i]}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0

	nLeg := len(series)
	w := 6.5 * vg.Inch
	h := vg.Length(n)*rowH + 1.1*vg.Inch + legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		drawWithLegendBelow(pad(c), p, leg, nLeg)
	}}, nil
}

// TemplatesFigure compares zero-shot top-1 accuracy across the prompt sets of cmp
// (e.g. bare labels, "a photo of a {}.", an ensemble) as horizontal bars labelled with
// their value, with the full-data linear probe (or the largest k) as a dashed
// reference line when there is one.
func TemplatesFigure(cmp *results.Comparison) (Figure, error) {
	var names []string
	var vals plotter.Values
	for i, r := range cmp.ZeroShot {
		a := metric(r, metricAcc1)
		if math.IsNaN(a) {
			continue
		}
		names = append(names, promptLabel(r, i))
		vals = append(vals, percent(a))
	}
	if len(vals) == 0 {
		return Figure{}, fmt.Errorf("plots: prompt templates: no zero-shot result with acc1")
	}
	n := len(vals)
	rowH := 0.45 * vg.Inch
	p := barPlot(fmt.Sprintf("%s, %s: zero-shot top-1 by prompt set", DatasetLabel(cmp.Dataset), modelName(cmp.Model, cmp.Pretrained)),
		"zero-shot top-1 accuracy (%)", n)

	b, err := plotter.NewBarChart(vals, rowH*0.6)
	if err != nil {
		return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
	}
	b.Horizontal = true
	b.Color = colourAt(1)
	b.LineStyle.Width = 0
	p.Add(b)

	// Values at the bar ends: inside in white for long bars, outside otherwise.
	var xys plotter.XYs
	var labels []string
	for i, v := range vals {
		xys = append(xys, plotter.XY{X: v, Y: float64(i)})
		if v > 20 {
			labels = append(labels, fmt.Sprintf("%.1f%%  ", v))
		} else {
			labels = append(labels, fmt.Sprintf("  %.1f%%", v))
		}
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
	}
	for i, v := range vals {
		sty := sans(9)
		sty.YAlign = draw.YCenter
		if v > 20 {
			sty.XAlign = draw.XRight
			sty.Color = color.White
		}
		lab.TextStyle[i] = sty
	}
	p.Add(lab)

	leg := newLegend()
	nLeg := 0
	if ref, ok := referenceProbe(comparisonStats(cmp)); ok {
		x := percent(ref.Acc1.Mean)
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: -0.5}, {X: x, Y: float64(n) - 0.5}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
		}
		line.Color, line.Width = colourAt(0), vg.Points(1.5)
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(line)
		leg.Add(fmt.Sprintf("linear probe, %s (%.1f%%)", shotsName(ref.Shots), x), line)
		nLeg++
	}

	ticks := make([]plot.Tick, n)
	for i, name := range names {
		ticks[i] = plot.Tick{Value: float64(i), Label: name}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	w := 6.5 * vg.Inch
	h := vg.Length(n)*rowH + 1.2*vg.Inch + legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		drawWithLegendBelow(pad(c), p, leg, nLeg)
	}}, nil
}

// referenceProbe returns the full-data probe statistics, or those of the largest k.
func referenceProbe(stats []ShotStats) (ShotStats, bool) {
	var best ShotStats
	found := false
	for _, s := range stats {
		if math.IsNaN(s.Acc1.Mean) {
			continue
		}
		if !found || s.Shots == 0 || (best.Shots != 0 && s.Shots > best.Shots) {
			best, found = s, true
		}
	}
	return best, found
}

// shotsName returns "full data" for 0 and "16-shot" for 16.
func shotsName(k int) string {
	if k == 0 {
		return "full data"
	}
	return strconv.Itoa(k) + "-shot"
}

// barPlot returns a plot for n rows of horizontal bars, top to bottom, over a 0-100%
// x axis labelled xLabel, with vertical grid lines only.
func barPlot(title, xLabel string, n int) *plot.Plot {
	p := newPlot(title)
	p.X.Label.Text = xLabel
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	p.X.Min, p.X.Max = 0, 100
	p.X.Tick.Marker = percentTicks{Step: 20}
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.Y.Padding = 0
	g := newGrid()
	g.Horizontal.Color = nil
	p.Add(g)
	return p
}
