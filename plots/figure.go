// Package plots draws gorgoclip results with gonum/plot and writes the experiment
// report: accuracy against shots (the CLIP paper's Figure 6 for one dataset),
// confusion matrices, per-class accuracy, a comparison of prompt templates, and the
// image-text similarity heatmap of OpenAI's CLIP notebook.
//
// Every figure builder returns a Figure, which Save writes as PNG and SVG side by
// side, atomically. Figures are sized as a paper prints them: ColumnWidth wide (a
// confusion matrix of many classes TextWidth), with 7 to 9 point text, so that they
// can go into a single column at 100% and stay readable. Each zero-shot prompt set
// keeps one colour (PromptColour) and one dash pattern across every figure.
// Accuracies in results files are fractions (CLIP_benchmark's convention); figures
// and the report show them as percentages. The package reads results and draws them:
// it holds no model code.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// DPI is the resolution of PNG output: print resolution, so a ColumnWidth figure is
// 1050 pixels wide.
const DPI = 300

// Figure widths of a two-column paper (a 3.5 inch column, a 7 inch text block).
const (
	ColumnWidth = 3.5 * vg.Inch
	TextWidth   = 7 * vg.Inch
)

// Text sizes in points at print size: ColumnWidth figures are meant to be printed at
// 100%, where 7 points is the smallest comfortable size.
const (
	titleSize  = 9
	labelSize  = 8
	tickSize   = 7.5
	legendSize = 7.5
	noteSize   = 7
)

// Figure is a drawing of a fixed size, ready to be written as PNG or SVG.
type Figure struct {
	// Width and Height are the figure size (vg.Inch = 72 points).
	Width, Height vg.Length
	draw          func(c draw.Canvas)
}

// Draw draws the figure on c, which should be Width by Height; the background is
// filled white first.
func (f Figure) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	if f.draw != nil {
		f.draw(c)
	}
}

// PixelSize returns the size of the figure's PNG in pixels at DPI.
func (f Figure) PixelSize() (w, h int) {
	return int(f.Width/vg.Inch*DPI + 0.5), int(f.Height/vg.Inch*DPI + 0.5)
}

// WriteTo writes the figure to w in format "png" (at DPI) or "svg".
func (f Figure) WriteTo(w io.Writer, format string) error {
	var cw vg.CanvasWriterTo
	switch format {
	case "png":
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(DPI))}
	case "svg":
		cw = vgsvg.New(f.Width, f.Height)
	default:
		return fmt.Errorf("plots: unsupported format %q (want png or svg)", format)
	}
	f.Draw(draw.New(cw))
	if format == "png" {
		_, err := cw.WriteTo(w)
		return err
	}
	// vgsvg encodes embedded rasters as PNG but labels them image/jpg, which strict
	// viewers refuse to show.
	var buf bytes.Buffer
	if _, err := cw.WriteTo(&buf); err != nil {
		return err
	}
	_, err := w.Write(bytes.ReplaceAll(buf.Bytes(), []byte("data:image/jpg;base64,"), []byte("data:image/png;base64,")))
	return err
}

// Save writes the figure to base+".png" and base+".svg", each atomically, creating
// the directory if needed.
func (f Figure) Save(base string) error {
	for _, format := range []string{"png", "svg"} {
		path := base + "." + format
		err := atomicfile.Write(path, func(w io.Writer) error { return f.WriteTo(w, format) })
		if err != nil {
			return fmt.Errorf("plots: writing %s: %w", path, err)
		}
	}
	return nil
}

// Colours of matplotlib's tab10 cycle, so figures look like the Python ones.
var tab10 = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // orange
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, // red
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, // brown
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, // pink
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, // grey
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, // olive
	color.RGBA{0x17, 0xbe, 0xcf, 0xff}, // cyan
}

func colourAt(i int) color.Color { return tab10[i%len(tab10)] }

// ProbeColour draws the linear probe in every figure.
var ProbeColour = tab10[0]

// chanceColour draws the chance level; no prompt set uses it.
var chanceColour = tab10[7]

// PromptColour returns the colour of the i-th zero-shot prompt set of a comparison,
// the same in every figure: tab10 without the probe's blue and the chance grey.
func PromptColour(i int) color.Color {
	order := []int{1, 2, 3, 4, 5, 6, 8, 9}
	return tab10[order[i%len(order)]]
}

// promptDashes returns the dash pattern of the i-th prompt set's zero-shot line.
func promptDashes(i int) []vg.Length {
	p := vg.Points
	patterns := [][]vg.Length{
		{p(5), p(2)}, {p(1.5), p(1.5)}, {p(7), p(2), p(1.5), p(2)}, {p(3), p(3)},
		{p(7), p(2), p(1.5), p(2), p(1.5), p(2)}, {p(10), p(3)},
	}
	return patterns[i%len(patterns)]
}

// newGrid returns light grey grid lines, to be added before the data.
func newGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{0xdd}
	g.Horizontal.Color = color.Gray{0xdd}
	return g
}

// sans returns a text style in Liberation Sans of the given size in points.
func sans(size float64) text.Style {
	return text.Style{
		Color:   color.Black,
		Font:    font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Length(size)},
		Handler: plot.DefaultTextHandler,
	}
}

// newPlot returns a plot whose text is sans-serif at print sizes (titleSize,
// labelSize, tickSize), with thin axes.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(titleSize).Font
	p.Title.Padding = vg.Points(5)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(labelSize).Font
		a.Tick.Label.Font = sans(tickSize).Font
		a.LineStyle.Width = vg.Points(0.6)
		a.Tick.LineStyle.Width = vg.Points(0.6)
		a.Tick.Length = vg.Points(3)
		a.Label.Padding = vg.Points(2)
	}
	// gonum raises vertical-axis tick labels by their font's descent; lower them back
	// so that a class name sits level with its row.
	sty := sans(tickSize)
	p.Y.Tick.Label.YAlign = draw.YAlignment(-0.5 - float64(sty.FontExtents().Descent/sty.Height("Mg")))
	return p
}

// newLegend returns a legend in legendSize sans-serif, entries stacked from the top
// left.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = sans(legendSize)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(20)
	l.Padding = vg.Points(1.5)
	return l
}

// legendHeight returns the height a legend of n entries takes when drawn by Draw.
func legendHeight(l plot.Legend, n int) vg.Length {
	if n == 0 {
		return 0
	}
	h := l.TextStyle.Rectangle("Mg").Max.Y
	return vg.Length(n)*h + vg.Length(n-1)*l.Padding + l.TextStyle.FontExtents().Descent
}

// drawWithLegendBelow draws p in c above a strip holding leg with n entries, so that
// the legend never hides data.
func drawWithLegendBelow(c draw.Canvas, p *plot.Plot, leg plot.Legend, n int) {
	lh := legendHeight(leg, n)
	if n == 0 {
		p.Draw(c)
		return
	}
	gap := vg.Points(6)
	p.Draw(draw.Crop(c, 0, 0, lh+gap, 0))
	// Indent the legend to the data area's left edge.
	dc := p.DataCanvas(draw.Crop(c, 0, 0, lh+gap, 0))
	strip := c
	strip.Max.Y = c.Min.Y + lh + vg.Points(4)
	strip.Min.X = dc.Min.X
	leg.Draw(strip)
}

// pad returns c shrunk by the figure margin on every side.
func pad(c draw.Canvas) draw.Canvas {
	m := vg.Points(3)
	return draw.Crop(c, m, -m, m, -m)
}

// percentTicks marks a 0-100 axis with labelled ticks every Step and unlabelled minor
// ticks halfway between; zero Step picks 5, 10 or 20 from the range.
type percentTicks struct{ Step float64 }

// Ticks implements plot.Ticker.
func (t percentTicks) Ticks(lo, hi float64) []plot.Tick {
	step := t.Step
	if step <= 0 {
		switch r := hi - lo; {
		case r <= 25:
			step = 5
		case r <= 60:
			step = 10
		default:
			step = 20
		}
	}
	var out []plot.Tick
	for v := math.Ceil(lo/step*2) * step / 2; v <= hi+1e-9; v += step / 2 {
		label := ""
		if math.Abs(math.Remainder(v, step)) < 1e-9 {
			label = strconv.FormatFloat(v+0, 'f', -1, 64) // +0 turns -0 into 0
		}
		out = append(out, plot.Tick{Value: v, Label: label})
	}
	return out
}

// percent converts a fraction to a percentage; NaN stays NaN.
func percent(f float64) float64 { return 100 * f }

// clamp returns v limited to [lo, hi].
func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// maxWidth returns the widest of texts in sty.
func maxWidth(sty text.Style, texts []string) vg.Length {
	var w vg.Length
	for _, t := range texts {
		if tw := sty.Width(t); tw > w {
			w = tw
		}
	}
	return w
}

// fitWidth shortens s (with an ellipsis) until it is at most w wide in sty.
func fitWidth(sty text.Style, s string, w vg.Length) string {
	out := s
	for n := len([]rune(s)); sty.Width(out) > w && n > 2; n-- {
		out = shorten(s, n)
	}
	return out
}

// drawTitle draws title centred at the top of c in the title style, shortened to
// c's width, and returns the canvas below it.
func drawTitle(c draw.Canvas, title string) draw.Canvas {
	if title == "" {
		return c
	}
	sty := sans(titleSize)
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
	title = fitWidth(sty, title, c.Max.X-c.Min.X)
	c.FillText(sty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y}, title)
	return draw.Crop(c, 0, 0, 0, -(sty.Rectangle(title).Size().Y + vg.Points(5)))
}

// shorten truncates s to at most n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
