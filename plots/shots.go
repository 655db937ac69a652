package plots

import (
	"cmp"
	"errors"
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

// errorPoints are points with symmetric vertical error bars.
type errorPoints struct {
	plotter.XYs
	plotter.YErrors
}

// lineLabel is a text at the right end of a horizontal line, moved up or down as
// little as possible so that labels do not overlap.
type lineLabel struct {
	y     float64 // data value the label belongs to
	text  string
	style draw.TextStyle
}

// placeLabels returns canvas heights for labels wanted at ys: each at least gap
// from its neighbours, in the order of ys, and inside [lo, hi] when they fit.
// Labels that would overlap are spread evenly around the mean of their heights.
func placeLabels(ys []vg.Length, gap, lo, hi vg.Length) []vg.Length {
	idx := make([]int, len(ys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ys[a], ys[b]) })
	// A cluster holds sorted labels first..first+n-1, spaced by gap, centred on mid.
	type cluster struct {
		first, n int
		mid      vg.Length
	}
	bottom := func(c cluster) vg.Length { return c.mid - gap*vg.Length(c.n-1)/2 }
	top := func(c cluster) vg.Length { return c.mid + gap*vg.Length(c.n-1)/2 }
	var cs []cluster
	for k, i := range idx {
		cs = append(cs, cluster{first: k, n: 1, mid: ys[i]})
		for {
			c := &cs[len(cs)-1]
			// Keep the cluster inside [lo, hi] when it fits.
			if top(*c) > hi {
				c.mid -= top(*c) - hi
			}
			if bottom(*c) < lo {
				c.mid += lo - bottom(*c)
			}
			if len(cs) < 2 || top(cs[len(cs)-2])+gap <= bottom(*c) {
				break
			}
			// Merge with the cluster below, centred on the mean of all its labels.
			prev := cs[len(cs)-2]
			var sum vg.Length
			for _, j := range idx[prev.first : c.first+c.n] {
				sum += ys[j]
			}
			merged := cluster{first: prev.first, n: prev.n + c.n}
			merged.mid = sum / vg.Length(merged.n)
			cs = append(cs[:len(cs)-2], merged)
		}
	}
	pos := make([]vg.Length, len(ys))
	for _, c := range cs {
		for k := 0; k < c.n; k++ {
			pos[idx[c.first+k]] = bottom(c) + gap*vg.Length(k)
		}
	}
	return pos
}

// ShotsFigure draws the CLIP paper's Figure 6 for one dataset: linear-probe top-1
// accuracy against k on a log2 axis (mean over seeds, a shaded band of one standard
// deviation), the full training set after a break in the axis, labelled with its
// images per class, each zero-shot prompt set as a horizontal line in its own colour
// and dash pattern, labelled at its right end and shaded with its 95% interval when
// the result has one, and a dotted chance line. It needs at least one probe or
// zero-shot result.
func ShotsFigure(cmp *results.Comparison) (Figure, error) {
	stats := comparisonStats(cmp)
	var kPts []ShotStats
	var full *ShotStats
	for _, s := range stats {
		switch {
		case math.IsNaN(s.Acc1.Mean):
		case s.Shots == 0:
			full = &s
		default:
			kPts = append(kPts, s)
		}
	}
	if len(kPts) == 0 && full == nil && len(cmp.ZeroShot) == 0 {
		return Figure{}, errors.New("plots: accuracy against shots: no probe or zero-shot results")
	}
	nClasses := len(classNames(cmp))

	title := DatasetLabel(cmp.Dataset) + ", " + ModelName(cmp.Model, cmp.Pretrained)
	p := newPlot("") // the title spans the label margin too: drawn below
	p.X.Label.Text = "training images per class (k)"
	p.Y.Label.Text = "top-1 accuracy (%)"
	p.Y.Tick.Marker = percentTicks{}
	p.X.Padding, p.Y.Padding = 0, 0
	g := newGrid()
	g.Vertical.Color = nil
	p.Add(g)

	// x is log2 k; the full set sits one and a half doublings after the largest k,
	// past a break in the axis.
	var ticks []plot.Tick
	lastX := 0.0
	for _, s := range kPts {
		x := math.Log2(float64(s.Shots))
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(s.Shots)})
		lastX = max(lastX, x)
	}
	fullX := lastX + 1.5
	if len(kPts) == 0 {
		fullX = 0
	}
	breakX := math.NaN()
	if full != nil {
		label := "full"
		if nClasses > 0 && full.Train > 0 {
			label = fmt.Sprintf("full\n%d/class", int(math.Round(float64(full.Train)/float64(nClasses))))
		}
		ticks = append(ticks, plot.Tick{Value: fullX, Label: label})
		if len(kPts) > 0 {
			breakX = lastX + 0.75
		}
	}
	if len(ticks) == 0 {
		ticks = []plot.Tick{{Value: 0, Label: ""}}
	}
	p.X.Min, p.X.Max = ticks[0].Value-0.45, ticks[len(ticks)-1].Value+0.45
	p.X.Tick.Marker = plot.ConstantTicks(ticks)

	leg := newLegend()
	nLeg := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	seedsNote := ""
	if n := maxSeeds(stats); n > 1 {
		seedsNote = fmt.Sprintf(" (mean ± 1 std, %d seeds)", n)
	}
	if len(kPts) > 0 {
		var line, upper, lower plotter.XYs
		for _, s := range kPts {
			x, m, sd := math.Log2(float64(s.Shots)), percent(s.Acc1.Mean), percent(s.Acc1.Std)
			line = append(line, plotter.XY{X: x, Y: m})
			upper = append(upper, plotter.XY{X: x, Y: m + sd})
			lower = append([]plotter.XY{{X: x, Y: m - sd}}, lower...)
			lo, hi = math.Min(lo, m-sd), math.Max(hi, m+sd)
		}
		band, err := plotter.NewPolygon(append(upper, lower...))
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		band.Color = withAlpha(ProbeColour, 0x40)
		band.LineStyle.Width = 0
		l, pts, err := plotter.NewLinePoints(line)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		l.Color, l.Width = ProbeColour, vg.Points(1.2)
		pts.Color, pts.Shape, pts.Radius = ProbeColour, draw.CircleGlyph{}, vg.Points(2)
		p.Add(band, l, pts)
		leg.Add("linear probe, k images per class"+seedsNote, band, l, pts)
		nLeg++
	}
	if full != nil {
		m, sd := percent(full.Acc1.Mean), percent(full.Acc1.Std)
		pt := errorPoints{XYs: plotter.XYs{{X: fullX, Y: m}}, YErrors: plotter.YErrors{{Low: sd, High: sd}}}
		sq, err := plotter.NewScatter(pt.XYs)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		sq.Color, sq.Shape, sq.Radius = ProbeColour, draw.BoxGlyph{}, vg.Points(2.5)
		p.Add(sq)
		if sd > 0 {
			bars, err := plotter.NewYErrorBars(pt)
			if err != nil {
				return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
			}
			bars.Color, bars.Width = ProbeColour, vg.Points(0.8)
			p.Add(bars)
		}
		leg.Add("linear probe, full training set", sq)
		nLeg++
		lo, hi = math.Min(lo, m-sd), math.Max(hi, m+sd)
	}

	// Zero-shot lines. Lines within a hair of each other share one interleaved dash
	// pattern, so each stays visible where they coincide.
	type zsLine struct {
		i        int
		acc      float64
		low, top float64 // 95% interval, NaN when absent
	}
	var zs []zsLine
	for i, r := range cmp.ZeroShot {
		a := percent(metric(r, metricAcc1))
		if math.IsNaN(a) {
			continue
		}
		z := zsLine{i: i, acc: a, low: percent(metric(r, metricAcc1Low)), top: percent(metric(r, metricAcc1High))}
		zs = append(zs, z)
		lo, hi = math.Min(lo, a), math.Max(hi, a)
		if !math.IsNaN(z.low) && !math.IsNaN(z.top) {
			lo, hi = math.Min(lo, z.low), math.Max(hi, z.top)
		}
	}
	chance := math.NaN()
	if nClasses > 1 {
		chance = 100 / float64(nClasses)
		lo, hi = math.Min(lo, chance), math.Max(hi, chance)
	}
	if !math.IsInf(lo, 0) {
		margin := math.Max(2, (hi-lo)*0.06)
		p.Y.Min = clamp(math.Floor(lo-margin), 0, 100)
		p.Y.Max = clamp(math.Ceil(hi+margin), 0, 100)
		if p.Y.Max <= p.Y.Min {
			p.Y.Min, p.Y.Max = 0, 100
		}
	}
	tol := (p.Y.Max - p.Y.Min) * 0.004 // under a point at print size
	var labels []lineLabel
	for _, z := range zs {
		col := PromptColour(z.i)
		if !math.IsNaN(z.low) && !math.IsNaN(z.top) && z.top > z.low {
			band, err := plotter.NewPolygon(plotter.XYs{{X: p.X.Min, Y: z.low}, {X: p.X.Max, Y: z.low}, {X: p.X.Max, Y: z.top}, {X: p.X.Min, Y: z.top}})
			if err == nil {
				band.Color = withAlpha(col, 0x22)
				band.LineStyle.Width = 0
				p.Add(band)
			}
		}
	}
	for _, z := range zs {
		col := PromptColour(z.i)
		line, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: z.acc}, {X: p.X.Max, Y: z.acc}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		line.Color, line.Width = col, vg.Points(1.2)
		var same []int // prompt sets drawn on this line's height, in order
		for _, o := range zs {
			if math.Abs(o.acc-z.acc) <= tol {
				same = append(same, o.i)
			}
		}
		if len(same) > 1 {
			d := vg.Points(4)
			line.Dashes = []vg.Length{d, d * vg.Length(len(same)-1)}
			line.DashOffs = d * vg.Length(len(same)-1-slices.Index(same, z.i))
		} else {
			line.Dashes = promptDashes(z.i)
		}
		p.Add(line)
		sty := sans(noteSize)
		sty.Color = col
		sty.YAlign = draw.YCenter
		labels = append(labels, lineLabel{y: z.acc, text: fmt.Sprintf("%s %.1f%%", shorten(promptLabel(cmp.ZeroShot[z.i], z.i), 18), z.acc), style: sty})
	}
	if !math.IsNaN(chance) {
		line, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: chance}, {X: p.X.Max, Y: chance}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		line.Color, line.Width = chanceColour, vg.Points(1)
		line.Dashes = []vg.Length{vg.Points(0.5), vg.Points(2)}
		p.Add(line)
		sty := sans(noteSize)
		sty.Color = chanceColour
		sty.YAlign = draw.YCenter
		labels = append(labels, lineLabel{y: chance, text: fmt.Sprintf("chance %.1f%%", chance), style: sty})
	}

	labelW := vg.Length(0)
	for _, l := range labels {
		labelW = max(labelW, l.style.Width(l.text))
	}
	if labelW > 0 {
		labelW += vg.Points(4)
	}
	w := ColumnWidth
	h := 2.6*vg.Inch + legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		c = drawTitle(pad(c), title)
		area := draw.Crop(c, 0, -labelW, 0, 0)
		lh := legendHeight(leg, nLeg)
		if nLeg > 0 {
			area = draw.Crop(area, 0, 0, lh+vg.Points(6), 0)
		}
		p.Draw(area)
		dc := p.DataCanvas(area)
		trX, trY := p.Transforms(&dc)
		if nLeg > 0 {
			strip := c
			strip.Max.Y = c.Min.Y + lh + vg.Points(3)
			strip.Min.X = dc.Min.X
			leg.Draw(strip)
		}
		if !math.IsNaN(breakX) {
			drawAxisBreak(c, trX(breakX), dc.Min.Y)
		}
		ys := make([]vg.Length, len(labels))
		for i, l := range labels {
			ys[i] = trY(l.y)
		}
		gap := sans(noteSize).Height("Mg") * 1.05
		pos := placeLabels(ys, gap, dc.Min.Y, dc.Max.Y)
		x := dc.Max.X + vg.Points(3)
		for i, l := range labels {
			if d := pos[i] - ys[i]; d > vg.Points(1) || d < -vg.Points(1) {
				ls := draw.LineStyle{Color: l.style.Color, Width: vg.Points(0.5)}
				c.StrokeLine2(ls, dc.Max.X, ys[i], x-vg.Points(1), pos[i])
			}
			c.FillText(l.style, vg.Point{X: x, Y: pos[i]}, l.text)
		}
	}}, nil
}

// drawAxisBreak marks a break in the x axis at (x, y): a white gap crossed by two
// slanted strokes, as papers print a broken axis.
func drawAxisBreak(c draw.Canvas, x, y vg.Length) {
	w, h := vg.Points(2.5), vg.Points(4)
	c.FillPolygon(color.White, []vg.Point{{X: x - w, Y: y - h}, {X: x + w, Y: y - h}, {X: x + w, Y: y + h}, {X: x - w, Y: y + h}})
	ls := draw.LineStyle{Color: color.Black, Width: vg.Points(0.6)}
	for _, dx := range []vg.Length{-w, w} {
		c.StrokeLine2(ls, x+dx-vg.Points(1.5), y-h, x+dx+vg.Points(1.5), y+h)
	}
}

// withAlpha returns col with alpha a, premultiplied as color.RGBA wants.
func withAlpha(col color.Color, a uint8) color.Color {
	r, g, b, _ := col.RGBA()
	f := uint32(a)
	return color.RGBA{uint8(r >> 8 * f / 255), uint8(g >> 8 * f / 255), uint8(b >> 8 * f / 255), a}
}

func maxSeeds(stats []ShotStats) int {
	n := 0
	for _, s := range stats {
		if s.Seeds > n {
			n = s.Seeds
		}
	}
	return n
}

// promptLabel names the prompt set of zero-shot result i.
func promptLabel(r results.Result, i int) string {
	if r.Prompts != "" {
		return shorten(r.Prompts, 48)
	}
	return fmt.Sprintf("prompt set %d", i+1)
}

// modelName joins a model and its pretrained tag: "ViT-B/32 (openai)".
func ModelName(model, pretrained string) string {
	switch {
	case model == "":
		return "CLIP"
	case pretrained == "":
		return model
	}
	return model + " (" + pretrained + ")"
}
