// Package plots draws gorgoclip results with gonum/plot and writes the experiment
// report: accuracy against shots (the CLIP paper's Figure 6 for one dataset),
// confusion matrices, per-class accuracy, a comparison of prompt templates, and the
// image-text similarity heatmap of OpenAI's CLIP notebook.
//
// Every figure builder returns a Figure, which Save writes as PNG and SVG side by
// side, atomically. Accuracies in results files are fractions (CLIP_benchmark's
// convention); figures and the report show them as percentages. The package reads
// results and draws them: it holds no model code.
package plots

import (
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

// DPI is the resolution of PNG output: a 6 inch wide figure is 900 pixels wide.
const DPI = 150

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
	_, err := cw.WriteTo(w)
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

// newPlot returns a plot whose text is sans-serif: title 12pt, labels 10pt, ticks 9pt.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12).Font
	p.Title.Padding = vg.Points(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(10).Font
		a.Tick.Label.Font = sans(9).Font
	}
	return p
}

// newLegend returns a legend in 9pt sans-serif, entries stacked from the top left.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = sans(9)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(2)
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
	gap := vg.Points(10)
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
	m := vg.Points(6)
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
			label = strconv.FormatFloat(v, 'f', -1, 64)
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

// shorten truncates s to at most n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
