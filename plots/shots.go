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

// methodStyle is how one method is drawn on the accuracy-against-shots figure.
type methodStyle struct {
	colour color.Color
	glyph  draw.GlyphDrawer
}

// methodGlyphs mark the methods' points, in order: filled shapes first, which stay
// legible at 2 points.
var methodGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, diamondGlyph{},
	draw.RingGlyph{}, draw.CrossGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}}

// methodOrder are the tab10 colours of the methods after the paper's probe: from
// the end of PromptColour's order, so that they meet the prompt sets' colours only
// when there are more than two prompt sets and six methods.
var methodOrder = []int{9, 6, 5, 4, 8, 3, 2, 1}

// styleOf returns the style of the j-th method of a figure: the paper's probe keeps
// ProbeColour and a circle wherever it comes.
func styleOf(j int, name string, probeFirst bool) methodStyle {
	if name == results.MethodLogReg {
		return methodStyle{ProbeColour, methodGlyphs[0]}
	}
	if probeFirst {
		j-- // the probe took the first glyph
	}
	return methodStyle{tab10[methodOrder[j%len(methodOrder)]], methodGlyphs[(j+1)%len(methodGlyphs)]}
}

// diamondGlyph is a filled diamond, the shape gonum/plot lacks.
type diamondGlyph struct{}

// DrawGlyph implements draw.GlyphDrawer.
func (diamondGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	r := sty.Radius * 1.25
	c.Fill(vg.Path{{Type: vg.MoveComp, Pos: vg.Point{X: pt.X, Y: pt.Y + r}},
		{Type: vg.LineComp, Pos: vg.Point{X: pt.X + r, Y: pt.Y}},
		{Type: vg.LineComp, Pos: vg.Point{X: pt.X, Y: pt.Y - r}},
		{Type: vg.LineComp, Pos: vg.Point{X: pt.X - r, Y: pt.Y}},
		{Type: vg.CloseComp}})
}

// methodDodge is the sideways shift between neighbouring methods' points, in
// doublings of k.
const methodDodge = 0.06

// curve is one method's statistics on the figure: k-shot points and the full set.
type curve struct {
	method string
	kPts   []ShotStats
	full   *ShotStats
}

// curves groups stats by method, keeping their order.
func curves(stats []ShotStats) []curve {
	var out []curve
	for _, s := range stats {
		if math.IsNaN(s.Acc1.Mean) {
			continue
		}
		if len(out) == 0 || out[len(out)-1].method != s.Method {
			out = append(out, curve{method: s.Method})
		}
		c := &out[len(out)-1]
		if s.Shots == 0 {
			c.full = &s
		} else {
			c.kPts = append(c.kPts, s)
		}
	}
	return out
}

// ShotsFigure draws the CLIP paper's Figure 6 for one dataset: top-1 accuracy
// against k on a log2 axis for each method (the mean over seeds, a shaded band of one
// standard deviation; each method in its own colour and marker, the paper's linear
// probe in ProbeColour), the full training set after a break in the axis, labelled
// with its images per class, each zero-shot prompt set as a horizontal line in its
// own colour and dash pattern, labelled at its right end and shaded with its 95%
// interval when the result has one, and a dotted chance line. It needs at least one
// probe or zero-shot result.
func ShotsFigure(cmp *results.Comparison) (Figure, error) {
	stats := methodStats(cmp)
	cs := curves(stats)
	if len(cs) == 0 && len(cmp.ZeroShot) == 0 {
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
	var ks []int
	var full *ShotStats
	for _, c := range cs {
		for _, s := range c.kPts {
			if !slices.Contains(ks, s.Shots) {
				ks = append(ks, s.Shots)
			}
		}
		if c.full != nil && (full == nil || c.method == results.MethodLogReg) {
			full = c.full
		}
	}
	slices.Sort(ks)
	var ticks []plot.Tick
	lastX := 0.0
	for _, k := range ks {
		x := math.Log2(float64(k))
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(k)})
		lastX = max(lastX, x)
	}
	fullX := lastX + 1.5
	if len(ks) == 0 {
		fullX = 0
	}
	breakX := math.NaN()
	if full != nil {
		label := "full"
		if nClasses > 0 && full.Train > 0 {
			label = fmt.Sprintf("full\n%d/class", int(math.Round(float64(full.Train)/float64(nClasses))))
		}
		ticks = append(ticks, plot.Tick{Value: fullX, Label: label})
		if len(ks) > 0 {
			breakX = lastX + 0.75
		}
	}
	if len(ticks) == 0 {
		ticks = []plot.Tick{{Value: 0, Label: ""}}
	}
	p.X.Min, p.X.Max = ticks[0].Value-0.45, ticks[len(ticks)-1].Value+0.45
	p.X.Tick.Marker = plot.ConstantTicks(ticks)

	var entries []legendEntry
	lo, hi := math.Inf(1), math.Inf(-1)
	seedsNote := ""
	if n := maxSeeds(stats); n > 1 {
		seedsNote = fmt.Sprintf(" (mean ± 1 std, %d seeds)", n)
	}
	// One method is the paper's figure; several are told apart by colour and marker,
	// and their bands are lighter so that overlaps stay readable.
	single := len(cs) == 1
	bandAlpha := uint8(0x40)
	if !single {
		bandAlpha = 0x22
	}
	probeFirst := len(cs) > 0 && cs[0].method == results.MethodLogReg
	for j, c := range cs {
		sty := styleOf(j, c.method, probeFirst)
		// Methods are dodged sideways at each k, so that close results keep their
		// markers apart.
		dodge := (float64(j) - float64(len(cs)-1)/2) * methodDodge
		name := c.method
		switch {
		case single && c.method == results.MethodLogReg:
			name = "linear probe, k images per class" + seedsNote
		case single:
			name += ", k images per class" + seedsNote
		case c.method == results.MethodLogReg:
			name = "linear probe (logreg)"
		}
		var line, upper, lower plotter.XYs
		for _, s := range c.kPts {
			x, m, sd := math.Log2(float64(s.Shots))+dodge, percent(s.Acc1.Mean), percent(s.Acc1.Std)
			line = append(line, plotter.XY{X: x, Y: m})
			upper = append(upper, plotter.XY{X: x, Y: m + sd})
			lower = append([]plotter.XY{{X: x, Y: m - sd}}, lower...)
			lo, hi = math.Min(lo, m-sd), math.Max(hi, m+sd)
		}
		var thumbs []plot.Thumbnailer
		if len(line) > 0 {
			band, err := plotter.NewPolygon(append(upper, lower...))
			if err != nil {
				return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
			}
			band.Color = withAlpha(sty.colour, bandAlpha)
			band.LineStyle.Width = 0
			l, pts, err := plotter.NewLinePoints(line)
			if err != nil {
				return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
			}
			l.Color, l.Width = sty.colour, vg.Points(1.2)
			pts.Color, pts.Shape, pts.Radius = sty.colour, sty.glyph, vg.Points(2)
			p.Add(band, l, pts)
			thumbs = []plot.Thumbnailer{band, l, pts}
		}
		if c.full != nil {
			m, sd := percent(c.full.Acc1.Mean), percent(c.full.Acc1.Std)
			pt := errorPoints{XYs: plotter.XYs{{X: fullX, Y: m}}, YErrors: plotter.YErrors{{Low: sd, High: sd}}}
			sq, err := plotter.NewScatter(pt.XYs)
			if err != nil {
				return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
			}
			sq.Color, sq.Radius = sty.colour, vg.Points(2)
			sq.Shape = sty.glyph
			if single {
				sq.Shape, sq.Radius = draw.BoxGlyph{}, vg.Points(2.5)
			}
			p.Add(sq)
			if sd > 0 {
				bars, err := plotter.NewYErrorBars(pt)
				if err != nil {
					return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
				}
				bars.Color, bars.Width = sty.colour, vg.Points(0.8)
				p.Add(bars)
			}
			lo, hi = math.Min(lo, m-sd), math.Max(hi, m+sd)
			switch {
			case single:
				if len(thumbs) > 0 {
					entries = append(entries, legendEntry{name, thumbs})
				}
				thumbs, name = []plot.Thumbnailer{sq}, "linear probe, full training set"
			case len(thumbs) == 0:
				thumbs = []plot.Thumbnailer{sq}
			}
		}
		entries = append(entries, legendEntry{name, thumbs})
	}
	if !single && seedsNote != "" {
		band, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		band.Color, band.LineStyle.Width = withAlpha(color.Black, 0x30), 0
		entries = append(entries, legendEntry{"± 1 std over " + strconv.Itoa(maxSeeds(stats)) + " seeds", []plot.Thumbnailer{band}})
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
	// Several methods share two legend columns.
	cols := 1
	if len(entries) > 3 {
		cols = 2
	}
	legs := legendColumns(entries, cols)
	lh := legendHeight(newLegend(), (len(entries)+cols-1)/cols)
	w := ColumnWidth
	h := 2.6*vg.Inch + lh
	if len(cs) > 2 {
		h += 0.4 * vg.Inch // room between close curves
	}
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		c = drawTitle(pad(c), title)
		area := draw.Crop(c, 0, -labelW, 0, 0)
		if lh > 0 {
			area = draw.Crop(area, 0, 0, lh+vg.Points(6), 0)
		}
		p.Draw(area)
		dc := p.DataCanvas(area)
		trX, trY := p.Transforms(&dc)
		if lh > 0 {
			strip := c
			strip.Max.Y = c.Min.Y + lh + vg.Points(3)
			strip.Min.X = dc.Min.X
			colW := (strip.Max.X - strip.Min.X) / vg.Length(len(legs))
			for i, leg := range legs {
				sc := strip
				sc.Min.X = strip.Min.X + colW*vg.Length(i)
				sc.Max.X = sc.Min.X + colW
				leg.Draw(sc)
			}
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

// legendEntry is one legend line: a text and the thumbnails drawn before it.
type legendEntry struct {
	text   string
	thumbs []plot.Thumbnailer
}

// legendColumns splits entries into cols legends filled column by column.
func legendColumns(entries []legendEntry, cols int) []plot.Legend {
	rows := (len(entries) + cols - 1) / cols
	var out []plot.Legend
	for i := 0; i < len(entries); i += rows {
		leg := newLegend()
		for _, e := range entries[i:min(i+rows, len(entries))] {
			leg.Add(e.text, e.thumbs...)
		}
		out = append(out, leg)
	}
	return out
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
