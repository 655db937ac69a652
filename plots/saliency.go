package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SaliencyMap is one heat map over an image: a square grid of values of any sign and
// scale (gradient x input, attention rollout, Grad-CAM). The figure shows the
// magnitudes, scaled per map from 0 (or, with Stretch, the smallest magnitude) to the
// 99th percentile, upsampled bilinearly to the image and blended over it.
type SaliencyMap struct {
	// Title names the method, e.g. "gradient × input".
	Title string
	// Values holds Side*Side values, row-major.
	Values []float32
	// Side is the grid's side: the image's for pixel maps, the patch grid's for
	// attention rollout, the last stage's for Grad-CAM.
	Side int
	// Stretch starts the colour map at the smallest magnitude rather than 0, for maps
	// whose values all sit on a floor (attention rollout: every patch keeps some of
	// the class token's attention).
	Stretch bool
}

// SaliencyColumn is the maps of one explained label, top to bottom.
type SaliencyColumn struct {
	// Heading names the label, e.g. "tench 93%".
	Heading string
	Maps    []SaliencyMap
}

// SaliencyFigure is one image explained: the image in the first column with the
// label-independent maps (attention rollout) under it, then a column per label.
type SaliencyFigure struct {
	// Title heads the figure (the image's name).
	Title string
	// Image is the image as the model saw it (the preprocessed crop).
	Image image.Image
	// Under are drawn under the image.
	Under []SaliencyMap
	// Columns hold the labels' maps.
	Columns []SaliencyColumn
}

// saliencyCell is the side of one panel.
const saliencyCell = 1.6 * vg.Inch

// Saliency draws f: a grid of square panels, each titled, the image top left.
func Saliency(f SaliencyFigure) (Figure, error) {
	if f.Image == nil || f.Image.Bounds().Empty() {
		return Figure{}, errors.New("plots: saliency figure without an image")
	}
	rows := 1 + len(f.Under)
	for _, c := range f.Columns {
		rows = max(rows, len(c.Maps))
	}
	for _, m := range slices.Concat(f.Under, columnMaps(f.Columns)) {
		if m.Side <= 0 || len(m.Values) != m.Side*m.Side {
			return Figure{}, fmt.Errorf("plots: saliency map %q has %d values, not a %d x %d grid", m.Title, len(m.Values), m.Side, m.Side)
		}
	}
	titleH, headH, capH, barH := vg.Points(22), vg.Points(16), vg.Points(13), vg.Points(24)
	gap := vg.Points(8)
	cols := 1 + len(f.Columns)
	width := vg.Length(cols)*(saliencyCell+gap) + gap
	height := titleH + headH + vg.Length(rows)*(capH+saliencyCell+gap) + barH
	cmap := moreland.ExtendedBlackBody()
	return Figure{Width: width, Height: height, draw: func(c draw.Canvas) {
		title, head, caption := sans(12), sans(10), sans(8)
		title.XAlign, head.XAlign, caption.XAlign = text.XCenter, text.XCenter, text.XCenter
		top := c.Max.Y - titleH
		c.FillText(title, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: top + vg.Points(6)}, shorten(f.Title, 90))
		cell := func(col, row int, heading, name string, img image.Image) {
			x := c.Min.X + gap + vg.Length(col)*(saliencyCell+gap)
			if row == 0 && heading != "" {
				c.FillText(head, vg.Point{X: x + saliencyCell/2, Y: top - headH + vg.Points(3)}, fit(head, heading, saliencyCell))
			}
			y := top - headH - vg.Length(row)*(capH+saliencyCell+gap)
			c.FillText(caption, vg.Point{X: x + saliencyCell/2, Y: y - capH + vg.Points(3)}, fit(caption, name, saliencyCell))
			r := vg.Rectangle{Min: vg.Point{X: x, Y: y - capH - saliencyCell}, Max: vg.Point{X: x + saliencyCell, Y: y - capH}}
			c.DrawImage(r, img)
		}
		cell(0, 0, "input", "as the model sees it", f.Image)
		for i, m := range f.Under {
			cell(0, i+1, "", mapCaption(m), overlay(f.Image, m, cmap))
		}
		for j, col := range f.Columns {
			for i, m := range col.Maps {
				cell(j+1, i, col.Heading, mapCaption(m), overlay(f.Image, m, cmap))
			}
		}
		colourBar(c, vg.Point{X: c.Min.X + gap, Y: c.Min.Y + vg.Points(6)}, cmap)
	}}, nil
}

// mapCaption is m's title, saying so when the map is zero everywhere (nothing to
// show: e.g. Grad-CAM when every weighted channel sum is negative).
func mapCaption(m SaliencyMap) string {
	if slices.ContainsFunc(m.Values, func(v float32) bool { return v != 0 }) {
		return m.Title
	}
	return m.Title + " (all zero)"
}

// fit shortens s until it is at most w wide in sty.
func fit(sty text.Style, s string, w vg.Length) string {
	for n := len([]rune(s)); n > 1 && sty.Width(s) > w; n-- {
		s = shorten(s, n-1)
	}
	return s
}

// colourBar draws the colour map as a strip with its meaning, its lower left at at.
func colourBar(c draw.Canvas, at vg.Point, cmap palette.ColorMap) {
	const steps = 64
	w, h := 1.6*vg.Inch, vg.Points(7)
	bar := image.NewNRGBA(image.Rect(0, 0, steps, 1))
	for i := range steps {
		col, err := cmap.At(float64(i) / (steps - 1))
		if err != nil {
			col = color.Black
		}
		bar.Set(i, 0, col)
	}
	c.DrawImage(vg.Rectangle{Min: at, Max: vg.Point{X: at.X + w, Y: at.Y + h}}, bar)
	sty := sans(8)
	c.FillText(sty, vg.Point{X: at.X + w + vg.Points(6), Y: at.Y}, "low → high magnitude, each map scaled to its 99th percentile")
}

func columnMaps(cols []SaliencyColumn) []SaliencyMap {
	var all []SaliencyMap
	for _, c := range cols {
		all = append(all, c.Maps...)
	}
	return all
}

// overlay blends m's magnitudes, in cmap's colours, over a grey copy of img: the
// higher the value, the more opaque its colour.
func overlay(img image.Image, m SaliencyMap, cmap palette.ColorMap) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	v := upsample(magnitudes(m.Values, m.Stretch), m.Side, w, h)
	cmap.SetMin(0)
	cmap.SetMax(1)
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			grey := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 0xffff
			base := 0.35 + 0.5*grey // faded, so that the heat reads on dark and light images
			s := v[y*w+x]
			hc, err := cmap.At(s)
			if err != nil {
				hc = color.Black
			}
			hr, hg, hb, _ := hc.RGBA()
			a := 0.15 + 0.75*s
			mix := func(c uint32) uint8 { return uint8(math.Round(255 * ((1-a)*base + a*float64(c)/0xffff))) }
			out.SetNRGBA(x, y, color.NRGBA{mix(hr), mix(hg), mix(hb), 255})
		}
	}
	return out
}

// magnitudes returns |v| scaled from 0 (with stretch, from the smallest |v|) to the
// 99th percentile and clipped to [0,1]; constant maps come out all 0.
func magnitudes(v []float32, stretch bool) []float64 {
	a := make([]float64, len(v))
	for i, x := range v {
		a[i] = math.Abs(float64(x))
	}
	s := slices.Clone(a)
	slices.Sort(s)
	lo, hi := 0.0, s[min(len(s)-1, int(0.99*float64(len(s))))]
	if stretch {
		lo = s[0]
	}
	if hi <= lo {
		hi = s[len(s)-1]
	}
	for i := range a {
		a[i] = 0
		if hi > lo {
			a[i] = min(max((math.Abs(float64(v[i]))-lo)/(hi-lo), 0), 1)
		}
	}
	return a
}

// upsample resizes a side x side grid to w x h bilinearly, sampling at pixel centres.
func upsample(v []float64, side, w, h int) []float64 {
	out := make([]float64, w*h)
	at := func(x, y int) float64 { return v[min(max(y, 0), side-1)*side+min(max(x, 0), side-1)] }
	for y := range h {
		fy := (float64(y)+0.5)*float64(side)/float64(h) - 0.5
		y0 := int(math.Floor(fy))
		ty := fy - float64(y0)
		for x := range w {
			fx := (float64(x)+0.5)*float64(side)/float64(w) - 0.5
			x0 := int(math.Floor(fx))
			tx := fx - float64(x0)
			out[y*w+x] = (1-ty)*((1-tx)*at(x0, y0)+tx*at(x0+1, y0)) + ty*((1-tx)*at(x0, y0+1)+tx*at(x0+1, y0+1))
		}
	}
	return out
}
