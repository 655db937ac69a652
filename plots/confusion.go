package plots

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Class counts above which the confusion matrix drops class-name ticks (numeric
// ticks every 10 classes instead) and values in cells.
const (
	maxNamedClasses  = 30
	maxValuedClasses = 15
)

// colourMap builds a continuous colour map through controls (increasing luminance).
func colourMap(controls ...color.Color) palette.ColorMap {
	cm, err := moreland.NewLuminance(controls)
	if err != nil {
		panic("plots: bad colour map: " + err.Error()) // the controls are constants
	}
	return cm
}

func hex(v uint32) color.Color {
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// blues is matplotlib's "Blues" (white to navy), reversed to rise in darkness.
func blues() palette.ColorMap {
	cm := colourMap(hex(0x08306b), hex(0x2171b5), hex(0x6baed6), hex(0xc6dbef), hex(0xf7fbff))
	return palette.Reverse(cm)
}

// viridis approximates matplotlib's default colour map from five of its stops.
func viridis() palette.ColorMap {
	return colourMap(hex(0x440154), hex(0x3b528b), hex(0x21918c), hex(0x5ec962), hex(0xfde725))
}

// grid is a dense matrix as a plotter.GridXYZ: column c at x = c, row r at y = r.
type grid struct {
	rows, cols int
	z          func(r, c int) float64
}

func (g grid) Dims() (c, r int)   { return g.cols, g.rows }
func (g grid) Z(c, r int) float64 { return g.z(r, c) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// normaliseRows divides each row of m by its sum; empty rows become NaN.
func normaliseRows(m [][]int) [][]float64 {
	out := make([][]float64, len(m))
	for i, row := range m {
		var n int
		for _, v := range row {
			n += v
		}
		out[i] = make([]float64, len(row))
		for j, v := range row {
			out[i][j] = math.NaN()
			if n > 0 {
				out[i][j] = float64(v) / float64(n)
			}
		}
	}
	return out
}

// drawColourBar draws a vertical colour bar for cm (its Min and Max set) in the
// rectangle x0..x0+w, y0..y1, with tick labels on its right and label beside them.
func drawColourBar(c draw.Canvas, cm palette.ColorMap, x0, w, y0, y1 vg.Length, ticks []float64, format, label string) {
	const steps = 128
	lo, hi := cm.Min(), cm.Max()
	dy := (y1 - y0) / steps
	for i := 0; i < steps; i++ {
		v := lo + (hi-lo)*(float64(i)+0.5)/steps
		col, err := cm.At(v)
		if err != nil {
			continue
		}
		ya := y0 + vg.Length(i)*dy
		c.FillPolygon(col, []vg.Point{{X: x0, Y: ya}, {X: x0 + w, Y: ya}, {X: x0 + w, Y: ya + dy + 0.3}, {X: x0, Y: ya + dy + 0.3}})
	}
	ls := draw.LineStyle{Color: color.Black, Width: vg.Points(0.5)}
	c.StrokeLines(ls, []vg.Point{{X: x0, Y: y0}, {X: x0 + w, Y: y0}, {X: x0 + w, Y: y1}, {X: x0, Y: y1}, {X: x0, Y: y0}})
	sty := sans(noteSize)
	sty.YAlign = draw.YCenter
	var lw vg.Length
	for _, t := range ticks {
		y := y0 + (y1-y0)*vg.Length((t-lo)/(hi-lo))
		c.StrokeLine2(ls, x0+w, y, x0+w+vg.Points(3), y)
		s := fmt.Sprintf(format, t)
		c.FillText(sty, vg.Point{X: x0 + w + vg.Points(5), Y: y}, s)
		lw = max(lw, sty.Width(s))
	}
	if label != "" {
		ls := sans(labelSize)
		ls.Rotation = math.Pi / 2
		ls.XAlign, ls.YAlign = draw.XCenter, draw.YTop
		c.FillText(ls, vg.Point{X: x0 + w + vg.Points(7) + lw, Y: (y0 + y1) / 2}, label)
	}
}

// cellTextColour returns black or white, whichever reads better on bg.
func cellTextColour(bg color.Color) color.Color {
	r, g, b, _ := bg.RGBA()
	lum := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 0xffff
	if lum < 0.5 {
		return color.White
	}
	return color.Black
}

// rasterCells draws a matrix as one image, cell (r, c) at x = c and y = r on a plot
// whose y axis is inverted (row 0 at the top). Each cell is a block of scale x scale
// pixels, so that viewers scaling the image do not blur the cells into each other.
type rasterCells struct {
	n      int
	colour func(r, c int) color.Color
}

// Plot implements plot.Plotter.
func (g rasterCells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	lo, hi := -0.5, float64(g.n)-0.5
	x0, x1 := trX(lo), trX(hi)
	y0, y1 := trY(lo), trY(hi) // y0 is the top: the axis is inverted
	rect := vg.Rectangle{Min: vg.Point{X: min(x0, x1), Y: min(y0, y1)}, Max: vg.Point{X: max(x0, x1), Y: max(y0, y1)}}
	scale := max(1, (1200+g.n-1)/g.n)
	img := image.NewRGBA(image.Rect(0, 0, g.n*scale, g.n*scale))
	for r := 0; r < g.n; r++ {
		for col := 0; col < g.n; col++ {
			rgba := color.RGBAModel.Convert(g.colour(r, col)).(color.RGBA)
			for dy := 0; dy < scale; dy++ {
				row := img.Pix[(r*scale+dy)*img.Stride:]
				for dx := 0; dx < scale; dx++ {
					o := 4 * (col*scale + dx)
					row[o], row[o+1], row[o+2], row[o+3] = rgba.R, rgba.G, rgba.B, rgba.A
				}
			}
		}
	}
	c.DrawImage(rect, img)
}

// ConfusionFigure draws a confusion matrix (rows true class, columns predicted) as a
// heatmap normalised per row, with a colour bar. The title gets the matrix's top-1
// accuracy and number of examples appended. Class names label both axes up to 30
// classes (numeric ticks every 10, 50 or 100 beyond, where the cells are drawn as one
// raster image), and up to 15 classes each cell shows its value. classNames may be
// nil (classes are then numbered); otherwise its length must match the matrix, which
// must be square. Up to 12 classes the figure is ColumnWidth wide, else TextWidth.
func ConfusionFigure(title string, classNames []string, confusion [][]int) (Figure, error) {
	n := len(confusion)
	if n == 0 {
		return Figure{}, fmt.Errorf("plots: confusion matrix %q is empty", title)
	}
	right, total := 0, 0
	for i, row := range confusion {
		if len(row) != n {
			return Figure{}, fmt.Errorf("plots: confusion matrix %q: row %d has %d columns, want %d", title, i, len(row), n)
		}
		for j, v := range row {
			if v < 0 {
				return Figure{}, fmt.Errorf("plots: confusion matrix %q: negative count %d at row %d, column %d", title, v, i, j)
			}
			total += v
		}
		right += row[i]
	}
	if classNames != nil && len(classNames) != n {
		return Figure{}, fmt.Errorf("plots: confusion matrix %q: %d class names for %d classes", title, len(classNames), n)
	}
	w := ColumnWidth
	if n > 12 {
		w = TextWidth
	}
	title = fitWidth(sans(titleSize), title, w-vg.Points(8))
	if total > 0 {
		title = fmt.Sprintf("%s\ntop-1 %.1f%%, n = %d", title, 100*float64(right)/float64(total), total)
	}
	names := classNames
	if names == nil {
		names = make([]string, n)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
	}
	norm := normaliseRows(confusion)

	cm := blues()
	cm.SetMin(0)
	cm.SetMax(1)
	nanColour := color.Gray{0xee}
	cellColour := func(r, c int) color.Color {
		if v := norm[r][c]; !math.IsNaN(v) {
			if col, err := cm.At(v); err == nil {
				return col
			}
		}
		return nanColour
	}

	p := newPlot(title)
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	p.X.Padding, p.Y.Padding = 0, 0
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	named := n <= maxNamedClasses
	if named {
		g := grid{rows: n, cols: n, z: func(r, c int) float64 { return norm[r][c] }}
		heat := plotter.NewHeatMap(g, cm.Palette(256))
		heat.Min, heat.Max = 0, 1
		heat.NaN = nanColour
		p.Add(heat)
	} else {
		// Thousands of vector cells leave anti-aliasing seams; one image does not.
		p.Add(rasterCells{n: n, colour: cellColour})
	}

	var ticks []plot.Tick
	if named {
		for i, name := range names {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: shorten(name, 24)})
		}
	} else {
		step := 10
		if n > 200 {
			step = 100
		} else if n > 60 {
			step = 20
		}
		for i := 0; i < n; i += step {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: strconv.Itoa(i)})
		}
		p.X.Label.Text = fmt.Sprintf("predicted class (index, %d classes)", n)
		p.Y.Label.Text = "true class (index)"
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(ticks), plot.ConstantTicks(ticks)
	if named {
		// Rotated names: gonum anchors a label's end slightly above the label area, so
		// drop the tick marks and end each name with a space to keep it off the axis.
		p.X.Tick.Label.Rotation = math.Pi / 2
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
		p.X.Tick.Length, p.Y.Tick.Length = 0, 0
		xt := make([]plot.Tick, len(ticks))
		for i, t := range ticks {
			xt[i] = plot.Tick{Value: t.Value, Label: t.Label + " "}
		}
		p.X.Tick.Marker = plot.ConstantTicks(xt)
	}

	if n <= maxValuedClasses {
		var xys plotter.XYs
		var labels []string
		for r := 0; r < n; r++ {
			for c := 0; c < n; c++ {
				v := norm[r][c]
				s := fmt.Sprintf("%.2f", v)
				switch {
				case math.IsNaN(v):
					s = ""
				case v == 0:
					s = "0"
				case s == "1.00" && v < 1:
					s = ">.99"
				case s == "0.00":
					s = "<.01"
				}
				s = strings.Replace(s, "0.", ".", 1)
				xys = append(xys, plotter.XY{X: float64(c), Y: float64(r)})
				labels = append(labels, s)
			}
		}
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return Figure{}, fmt.Errorf("plots: confusion matrix %q: %w", title, err)
		}
		for i := range lab.TextStyle {
			v := norm[i/n][i%n]
			bg := cellColour(i/n, i%n)
			sty := sans(noteSize)
			if n > 10 {
				sty = sans(5.5)
			}
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
			sty.Color = cellTextColour(bg)
			if v == 0 {
				sty.Color = color.Gray{0xaa}
			}
			lab.TextStyle[i] = sty
		}
		p.Add(lab)
	}

	labelW := vg.Points(14)
	if named {
		labelW = maxWidth(p.Y.Tick.Label, tickLabels(ticks))
	}
	axisExtra := labelW + vg.Points(18) // tick labels, axis label and padding
	barW := 0.72 * vg.Inch
	side := w - axisExtra - barW - vg.Points(8)
	titleH := p.Title.TextStyle.Rectangle(title).Size().Y + p.Title.Padding
	h := titleH + side + axisExtra + vg.Points(6)

	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		main := draw.Crop(c, vg.Points(3), -barW, vg.Points(3), -vg.Points(2))
		p.Draw(main)
		dc := p.DataCanvas(main)
		drawColourBar(c, cm, dc.Max.X+vg.Points(8), vg.Points(8), dc.Min.Y, dc.Max.Y,
			[]float64{0, 0.25, 0.5, 0.75, 1}, "%.2f", "fraction of the true class")
	}}, nil
}

func tickLabels(ts []plot.Tick) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Label
	}
	return out
}
