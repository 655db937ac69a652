package plots

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
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
	// Colour draws the series; nil picks one by position (the probe's blue first).
	Colour color.Color
}

// MaxClassRows is how many classes PerClassFigure shows: beyond it, the best and the
// worst MaxClassRows/2.
const MaxClassRows = 40

// seriesGlyphs tell series apart where their dots coincide.
var seriesGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.BoxGlyph{}, draw.RingGlyph{}}

// PerClassFigure draws per-class accuracy as a dot plot: one row per class, sorted
// by the first series (best on top), a dot per series joined by a thin line, e.g.
// zero-shot against the linear probe. A class at 0% stays visible (the axis starts
// below 0). With more than MaxClassRows classes it shows the best and the worst
// MaxClassRows/2 and says how many it leaves out. Every series must have one value
// per class name.
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
	// Order: the first series descending, classes without a value last, then by index.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	key := func(i int) float64 {
		if v := series[0].Values[i]; !math.IsNaN(v) {
			return v
		}
		return math.Inf(-1)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(b), key(a)) })
	rows := order // class index per row; -1 marks the gap
	omitted := 0
	if n > MaxClassRows {
		half := MaxClassRows / 2
		omitted = n - 2*half
		rows = append(append(slices.Clone(order[:half]), -1), order[n-half:]...)
	}
	nRows := len(rows)

	p := newPlot(fitWidth(sans(titleSize), title, ColumnWidth-vg.Points(8)))
	p.X.Label.Text = "accuracy on the class's test images (%)"
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	p.X.Min, p.X.Max = -4, 104
	p.X.Tick.Marker = percentTicks{Step: 20}
	p.Y.Min, p.Y.Max = -0.6, float64(nRows)-0.4
	p.Y.Padding, p.X.Padding = 0, 0
	g := newGrid()
	g.Horizontal.Color = nil
	p.Add(g)

	// A light guide per row, and a thin line spanning the series' values.
	for r, c := range rows {
		if c < 0 {
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range series {
			if v := s.Values[c]; !math.IsNaN(v) {
				lo, hi = math.Min(lo, percent(v)), math.Max(hi, percent(v))
			}
		}
		guide, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(r)}, {X: 100, Y: float64(r)}})
		guide.Color, guide.Width = color.Gray{0xee}, vg.Points(0.4)
		p.Add(guide)
		if hi > lo {
			span, _ := plotter.NewLine(plotter.XYs{{X: lo, Y: float64(r)}, {X: hi, Y: float64(r)}})
			span.Color, span.Width = color.Gray{0x99}, vg.Points(0.8)
			p.Add(span)
		}
	}
	leg := newLegend()
	for i, s := range series {
		var xys plotter.XYs
		for r, c := range rows {
			if c >= 0 && !math.IsNaN(s.Values[c]) {
				xys = append(xys, plotter.XY{X: percent(s.Values[c]), Y: float64(r)})
			}
		}
		col := s.Colour
		if col == nil {
			col = colourAt(i)
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: per-class accuracy %q: %w", title, err)
		}
		sc.Color, sc.Shape, sc.Radius = col, seriesGlyphs[i%len(seriesGlyphs)], vg.Points(2.2)
		p.Add(sc)
		leg.Add(s.Name, sc)
	}
	ticks := make([]plot.Tick, nRows)
	for r, c := range rows {
		label := fmt.Sprintf("… %d more classes …", omitted)
		if c >= 0 {
			label = shorten(classNames[c], 26)
		}
		ticks[r] = plot.Tick{Value: float64(r), Label: label}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0

	nLeg := len(series)
	rowH := sans(tickSize).Height("Mg") * 1.25
	w := ColumnWidth
	h := vg.Length(nRows)*rowH + 0.75*vg.Inch + legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		drawWithLegendBelow(pad(c), p, leg, nLeg)
	}}, nil
}

// TemplatesFigure compares zero-shot top-1 accuracy across the prompt sets of cmp
// (e.g. bare labels, "a photo of a {}.", an ensemble) as horizontal bars, each in its
// prompt set's colour with its 95% interval as a whisker and its value beside it,
// with the full-data linear probe (or the largest k) as a dashed reference line and
// chance as a dotted one.
func TemplatesFigure(cmp *results.Comparison) (Figure, error) {
	type bar struct {
		i             int
		name          string
		acc, low, top float64
	}
	var bars []bar
	for i, r := range cmp.ZeroShot {
		a := metric(r, metricAcc1)
		if math.IsNaN(a) {
			continue
		}
		bars = append(bars, bar{i, promptLabel(r, i), percent(a), percent(metric(r, metricAcc1Low)), percent(metric(r, metricAcc1High))})
	}
	if len(bars) == 0 {
		return Figure{}, fmt.Errorf("plots: prompt templates: no zero-shot result with acc1")
	}
	n := len(bars)
	p := barPlot(fitWidth(sans(titleSize), DatasetLabel(cmp.Dataset)+", "+ModelName(cmp.Model, cmp.Pretrained), ColumnWidth-vg.Points(8)),
		"zero-shot top-1 accuracy (%)", n)
	rowH := 0.24 * vg.Inch
	valSty := sans(noteSize)
	valSty.YAlign = draw.YCenter
	for r, b := range bars {
		vals := make(plotter.Values, n)
		vals[r] = b.acc
		bc, err := plotter.NewBarChart(vals, rowH*0.62)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
		}
		bc.Horizontal = true
		bc.Color = PromptColour(b.i)
		bc.LineStyle.Width = 0
		p.Add(bc)
		end, start := b.acc, b.acc // of the bar and its whisker
		if !math.IsNaN(b.low) && !math.IsNaN(b.top) {
			eb, err := plotter.NewXErrorBars(errorPointsX{XYs: plotter.XYs{{X: b.acc, Y: float64(r)}}, XErrors: plotter.XErrors{{Low: b.acc - b.low, High: b.top - b.acc}}})
			if err != nil {
				return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
			}
			eb.LineStyle.Width = vg.Points(0.8)
			eb.CapWidth = vg.Points(4)
			p.Add(eb)
			end, start = b.top, math.Min(b.acc, b.low)
		}
		// The value beside the whisker, or inside the bar when it would leave the axis.
		sty := valSty
		x, text := end, "  "+fmt.Sprintf("%.1f%%", b.acc)
		if end > 84 {
			x, text = start, fmt.Sprintf("%.1f%%", b.acc)+"  "
			sty.XAlign = draw.XRight
			sty.Color = color.White
		}
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: float64(r)}}, Labels: []string{text}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: prompt templates: %w", err)
		}
		lab.TextStyle[0] = sty
		p.Add(lab)
	}

	leg := newLegend()
	nLeg := 0
	vline := func(x float64, col color.Color, dashes []vg.Length, name string) error {
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: -0.5}, {X: x, Y: float64(n) - 0.5}})
		if err != nil {
			return fmt.Errorf("plots: prompt templates: %w", err)
		}
		line.Color, line.Width, line.Dashes = col, vg.Points(1.1), dashes
		p.Add(line)
		leg.Add(name, line)
		nLeg++
		return nil
	}
	if ref, ok := referenceProbe(comparisonStats(cmp)); ok {
		x := percent(ref.Acc1.Mean)
		if err := vline(x, ProbeColour, []vg.Length{vg.Points(5), vg.Points(2)}, fmt.Sprintf("linear probe, %s (%.1f%%)", shotsName(ref.Shots), x)); err != nil {
			return Figure{}, err
		}
	}
	if k := len(classNames(cmp)); k > 1 {
		if err := vline(100/float64(k), chanceColour, []vg.Length{vg.Points(0.5), vg.Points(2)}, fmt.Sprintf("chance (%d classes, %.1f%%)", k, 100/float64(k))); err != nil {
			return Figure{}, err
		}
	}
	ticks := make([]plot.Tick, n)
	for r, b := range bars {
		ticks[r] = plot.Tick{Value: float64(r), Label: shorten(b.name, 28)}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	w := ColumnWidth
	h := vg.Length(n)*rowH + 0.8*vg.Inch + legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		drawWithLegendBelow(pad(c), p, leg, nLeg)
	}}, nil
}

// errorPointsX are points with horizontal error bars.
type errorPointsX struct {
	plotter.XYs
	plotter.XErrors
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
