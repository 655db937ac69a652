package plots

import (
	"errors"
	"fmt"
	"math"
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

// fullShotsX returns where the "full" tick goes on the log2 k axis: one doubling
// after the largest k (or 1 when there is no k-shot probe).
func fullShotsX(stats []ShotStats) float64 {
	kmax := 0
	for _, s := range stats {
		if s.Shots > kmax {
			kmax = s.Shots
		}
	}
	if kmax == 0 {
		return 1
	}
	return 2 * float64(kmax)
}

// ShotsFigure draws the CLIP paper's Figure 6 for one dataset: linear-probe top-1
// accuracy (mean over seeds, error bars one standard deviation) against k on a log2
// axis, full data as a last tick after the largest k, and a dashed horizontal line
// for each zero-shot prompt set. It needs at least one probe or zero-shot result.
func ShotsFigure(cmp *results.Comparison) (Figure, error) {
	stats := comparisonStats(cmp)
	var pts []ShotStats
	for _, s := range stats {
		if !math.IsNaN(s.Acc1.Mean) {
			pts = append(pts, s)
		}
	}
	if len(pts) == 0 && len(cmp.ZeroShot) == 0 {
		return Figure{}, errors.New("plots: accuracy against shots: no probe or zero-shot results")
	}

	p := newPlot(fmt.Sprintf("%s, %s: zero-shot vs linear probe", DatasetLabel(cmp.Dataset), modelName(cmp.Model, cmp.Pretrained)))
	p.X.Label.Text = "training examples per class (k, log2 scale)"
	p.Y.Label.Text = "top-1 accuracy (%)"
	p.X.Scale = plot.LogScale{}
	p.Y.Tick.Marker = percentTicks{}
	p.Add(newGrid())

	fullX := fullShotsX(pts)
	var ticks []plot.Tick
	kPts, fullPts := errorPoints{}, errorPoints{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range pts {
		x, label := float64(s.Shots), strconv.Itoa(s.Shots)
		if s.Shots == 0 {
			x, label = fullX, "full"
		}
		ticks = append(ticks, plot.Tick{Value: x, Label: label})
		m, sd := percent(s.Acc1.Mean), percent(s.Acc1.Std)
		pt := plotter.XY{X: x, Y: m}
		e := struct{ Low, High float64 }{sd, sd}
		if s.Shots == 0 {
			fullPts.XYs, fullPts.YErrors = append(fullPts.XYs, pt), append(fullPts.YErrors, e)
		} else {
			kPts.XYs, kPts.YErrors = append(kPts.XYs, pt), append(kPts.YErrors, e)
		}
		lo, hi = math.Min(lo, m-sd), math.Max(hi, m+sd)
	}
	if len(ticks) == 0 {
		ticks = []plot.Tick{{Value: 1, Label: "full"}}
	}
	xmin, xmax := ticks[0].Value/1.5, fullX*1.5
	p.X.Min, p.X.Max = xmin, xmax
	p.X.Tick.Marker = plot.ConstantTicks(ticks)

	leg := newLegend()
	nLeg := 0
	probeColour := colourAt(0)
	seedsNote := ""
	if n := maxSeeds(pts); n > 1 {
		seedsNote = fmt.Sprintf(", mean ± std over %d seeds", n)
	}
	if len(kPts.XYs) > 0 {
		line, points, err := plotter.NewLinePoints(kPts.XYs)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		line.Color, line.Width = probeColour, vg.Points(1.5)
		points.Color, points.Shape, points.Radius = probeColour, draw.CircleGlyph{}, vg.Points(3)
		bars, err := plotter.NewYErrorBars(kPts)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		bars.Color, bars.Width = probeColour, vg.Points(1)
		p.Add(line, points, bars)
		leg.Add("linear probe, k shots per class"+seedsNote, line, points)
		nLeg++
	}
	if len(fullPts.XYs) > 0 {
		points, err := plotter.NewScatter(fullPts.XYs)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		points.Color, points.Shape, points.Radius = probeColour, draw.BoxGlyph{}, vg.Points(3.5)
		bars, err := plotter.NewYErrorBars(fullPts)
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		bars.Color, bars.Width = probeColour, vg.Points(1)
		p.Add(points, bars)
		if len(kPts.XYs) > 0 {
			// A dotted link shows the full-data point continues the curve, but is not at a k.
			last := kPts.XYs[len(kPts.XYs)-1]
			link, err := plotter.NewLine(plotter.XYs{last, fullPts.XYs[0]})
			if err == nil {
				link.Color, link.Width, link.Dashes = probeColour, vg.Points(1), []vg.Length{vg.Points(1), vg.Points(3)}
				p.Add(link)
			}
		}
		leg.Add("linear probe, full training set", points)
		nLeg++
	}

	for i, r := range cmp.ZeroShot {
		a := percent(metric(r, metricAcc1))
		if math.IsNaN(a) {
			continue
		}
		line, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: a}, {X: xmax, Y: a}})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: accuracy against shots: %w", err)
		}
		line.Color, line.Width = colourAt(i+1), vg.Points(1.5)
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(line)
		leg.Add(fmt.Sprintf("zero-shot, %s (%.1f%%)", promptLabel(r, i), a), line)
		nLeg++
		lo, hi = math.Min(lo, a), math.Max(hi, a)
	}
	if !math.IsInf(lo, 0) {
		pad := math.Max(2, (hi-lo)*0.08)
		p.Y.Min = clamp(math.Floor(lo-pad), 0, 100)
		p.Y.Max = clamp(math.Ceil(hi+pad), 0, 100)
		if p.Y.Max <= p.Y.Min {
			p.Y.Min, p.Y.Max = 0, 100
		}
	}

	w, h := 6.5*vg.Inch, 4.3*vg.Inch+legendHeight(leg, nLeg)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		drawWithLegendBelow(pad(c), p, leg, nLeg)
	}}, nil
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
func modelName(model, pretrained string) string {
	switch {
	case model == "":
		return "CLIP"
	case pretrained == "":
		return model
	}
	return model + " (" + pretrained + ")"
}
