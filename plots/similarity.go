package plots

import (
	"fmt"
	"image"
	"image/color"
	"math"

	xdraw "golang.org/x/image/draw"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Similarity is an image-text cosine-similarity matrix as drawn in OpenAI's CLIP
// notebook (Interacting_with_CLIP.ipynb): rows are text prompts, columns are images,
// with the images shown above their columns. It is an input to SimilarityFigure, not
// a results file.
type Similarity struct {
	// Title is drawn above the figure when not empty, and Subtitle under it in
	// smaller type (what was chosen and what was left out).
	Title, Subtitle string
	// Texts are the row labels, one per prompt.
	Texts []string
	// Images are the column thumbnails, one per image; nil leaves the row of
	// thumbnails out and numbers the columns. Large images are downscaled.
	Images []image.Image
	// Captions, when set, go under the columns' thumbnails (the images' true labels),
	// one per column.
	Captions []string
	// Values holds the cosine similarities, [len(Texts)][columns].
	Values [][]float64
	// Min and Max are the ends of the colour scale; when both are zero the data's
	// range is used. The notebook uses 0.1 and 0.3 for raw CLIP similarities.
	Min, Max float64
}

// SimilarityFigure draws s as a heatmap with the value in each cell, the image
// thumbnails above the columns and a colour bar on the right.
func SimilarityFigure(s Similarity) (Figure, error) {
	rows := len(s.Texts)
	if rows == 0 || len(s.Values) != rows {
		return Figure{}, fmt.Errorf("plots: similarity %q: %d texts but %d rows of values", s.Title, rows, len(s.Values))
	}
	cols := len(s.Values[0])
	for i, r := range s.Values {
		if len(r) != cols {
			return Figure{}, fmt.Errorf("plots: similarity %q: row %d has %d values, want %d", s.Title, i, len(r), cols)
		}
	}
	if cols == 0 {
		return Figure{}, fmt.Errorf("plots: similarity %q: no images", s.Title)
	}
	if s.Images != nil && len(s.Images) != cols {
		return Figure{}, fmt.Errorf("plots: similarity %q: %d images for %d columns", s.Title, len(s.Images), cols)
	}
	if s.Captions != nil && len(s.Captions) != cols {
		return Figure{}, fmt.Errorf("plots: similarity %q: %d captions for %d columns", s.Title, len(s.Captions), cols)
	}
	lo, hi := s.Min, s.Max
	if lo == 0 && hi == 0 {
		lo, hi = math.Inf(1), math.Inf(-1)
		for _, r := range s.Values {
			for _, v := range r {
				if !math.IsNaN(v) {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	if !(hi > lo) { // constant or all NaN
		lo, hi = lo-0.5, lo+0.5
		if math.IsNaN(lo) || math.IsInf(lo, 0) {
			lo, hi = 0, 1
		}
	}

	labelSty := sans(tickSize)
	labelSty.XAlign, labelSty.YAlign = draw.XRight, draw.YCenter
	texts := make([]string, rows)
	for i, t := range s.Texts {
		texts[i] = shorten(t, 40)
	}
	margin := vg.Points(4)
	labelW := maxWidth(labelSty, texts) + vg.Points(4)
	barW := vg.Points(8) + vg.Points(50)
	// Cells fill the text width, between 0.3 and 0.65 inch.
	cell := clamp(float64((TextWidth-2*margin-labelW-barW)/vg.Length(cols)), float64(0.3*vg.Inch), float64(0.65*vg.Inch))
	cellL := vg.Length(cell)
	titleSty := sans(titleSize)
	titleSty.XAlign, titleSty.YAlign = draw.XCenter, draw.YTop
	subSty := sans(noteSize)
	subSty.XAlign, subSty.YAlign = draw.XCenter, draw.YTop
	var titleH, subH vg.Length
	if s.Title != "" {
		titleH = titleSty.Rectangle(s.Title).Size().Y + vg.Points(3)
	}
	if s.Subtitle != "" {
		subH = subSty.Rectangle(s.Subtitle).Size().Y + vg.Points(4)
	}
	capSty := sans(6.5)
	capSty.XAlign, capSty.YAlign = draw.XCenter, draw.YTop
	captions := make([]string, len(s.Captions))
	var capH vg.Length
	for i, t := range s.Captions {
		captions[i] = t
		for r := len([]rune(t)); capSty.Width(captions[i]) > cellL-vg.Points(2) && r > 2; r-- {
			captions[i] = shorten(t, r)
		}
		capH = capSty.Height("Mg") + vg.Points(2)
	}
	thumbH, colLabelH := cellL, vg.Length(0)
	if s.Images == nil {
		thumbH = 0
		colLabelH = vg.Points(12)
	}
	barX := margin + labelW + vg.Length(cols)*cellL + vg.Points(8)
	w := barX + barW + margin
	// The heatmap is at least as wide as the title.
	for _, t := range []vg.Length{titleSty.Width(s.Title), subSty.Width(s.Subtitle)} {
		w = max(w, t+2*margin)
	}
	h := margin + titleH + subH + thumbH + capH + colLabelH + vg.Points(3) + vg.Length(rows)*cellL + margin

	thumbs := make([]image.Image, len(s.Images))
	maxPx := int(cellL/vg.Inch*DPI + 0.5)
	for i, img := range s.Images {
		thumbs[i] = thumbnail(img, maxPx)
	}
	cm := viridis()
	cm.SetMin(lo)
	cm.SetMax(hi)

	valueSize := math.Min(7, cell*0.22)
	return Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		top := c.Max.Y - margin
		if s.Title != "" {
			c.FillText(titleSty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: top}, s.Title)
			top -= titleH
		}
		if s.Subtitle != "" {
			c.FillText(subSty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: top}, s.Subtitle)
			top -= subH
		}
		x0 := c.Min.X + margin + labelW
		// Thumbnails, each fitted in a cellL-sized square keeping its aspect ratio.
		for j, img := range thumbs {
			b := img.Bounds()
			pad := vg.Points(1.5)
			bw, bh := cellL-2*pad, thumbH-2*pad
			sc := math.Min(float64(bw)/float64(b.Dx()), float64(bh)/float64(b.Dy()))
			iw, ih := vg.Length(float64(b.Dx())*sc), vg.Length(float64(b.Dy())*sc)
			cx := x0 + vg.Length(j)*cellL + cellL/2
			cy := top - thumbH/2
			c.DrawImage(vg.Rectangle{Min: vg.Point{X: cx - iw/2, Y: cy - ih/2}, Max: vg.Point{X: cx + iw/2, Y: cy + ih/2}}, img)
		}
		top -= thumbH
		for j, t := range captions {
			c.FillText(capSty, vg.Point{X: x0 + vg.Length(j)*cellL + cellL/2, Y: top - vg.Points(1)}, t)
		}
		top -= capH
		if s.Images == nil {
			sty := sans(noteSize)
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
			for j := 0; j < cols; j++ {
				c.FillText(sty, vg.Point{X: x0 + vg.Length(j)*cellL + cellL/2, Y: top - colLabelH + vg.Points(3)}, fmt.Sprintf("image %d", j))
			}
			top -= colLabelH
		}
		top -= vg.Points(4)
		valSty := sans(valueSize)
		valSty.XAlign, valSty.YAlign = draw.XCenter, draw.YCenter
		for i := 0; i < rows; i++ {
			yTop := top - vg.Length(i)*cellL
			c.FillText(labelSty, vg.Point{X: x0 - vg.Points(4), Y: yTop - cellL/2}, texts[i])
			for j := 0; j < cols; j++ {
				v := s.Values[i][j]
				xl := x0 + vg.Length(j)*cellL
				bg := cellColour(cm, v)
				c.FillPolygon(bg, []vg.Point{{X: xl, Y: yTop - cellL}, {X: xl + cellL, Y: yTop - cellL}, {X: xl + cellL, Y: yTop}, {X: xl, Y: yTop}})
				if !math.IsNaN(v) {
					valSty.Color = cellTextColour(bg)
					c.FillText(valSty, vg.Point{X: xl + cellL/2, Y: yTop - cellL/2}, fmt.Sprintf("%.2f", v))
				}
			}
		}
		bottom := top - vg.Length(rows)*cellL
		drawColourBar(c, cm, c.Min.X+barX, vg.Points(8), bottom, top, niceTicks(lo, hi), "%.2f", "cosine similarity")
	}}, nil
}

// cellColour returns cm's colour for v, clamped to the map's range; NaN is light grey.
func cellColour(cm palette.ColorMap, v float64) color.Color {
	if math.IsNaN(v) {
		return color.Gray{0xee}
	}
	col, err := cm.At(clamp(v, cm.Min(), cm.Max()))
	if err != nil {
		return color.Gray{0xee}
	}
	return col
}

// thumbnail returns img downscaled (Catmull-Rom) so that neither side exceeds maxPx;
// smaller images are returned as they are.
func thumbnail(img image.Image, maxPx int) image.Image {
	b := img.Bounds()
	if b.Dx() <= maxPx && b.Dy() <= maxPx || maxPx <= 0 {
		return img
	}
	sc := math.Min(float64(maxPx)/float64(b.Dx()), float64(maxPx)/float64(b.Dy()))
	dst := image.NewRGBA(image.Rect(0, 0, max(1, int(float64(b.Dx())*sc+0.5)), max(1, int(float64(b.Dy())*sc+0.5))))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, b, xdraw.Src, nil)
	return dst
}

// niceTicks returns about five evenly spaced round values within [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/4)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(step*m) <= 5 {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+1e-9*span; v += step {
		out = append(out, v)
	}
	return out
}
