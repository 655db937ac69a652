package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"gonum.org/v1/plot/palette/moreland"
)

// TestSaliencyFigure draws a figure with a pixel map whose hot spot is in the top
// left corner and checks the PNG's size and that the heat lands there.
func TestSaliencyFigure(t *testing.T) {
	const r = 32
	img := image.NewNRGBA(image.Rect(0, 0, r, r))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	hot := make([]float32, r*r)
	for y := range 8 {
		for x := range 8 {
			hot[y*r+x] = -5 // magnitudes are shown: the sign does not matter
		}
	}
	f, err := Saliency(SaliencyFigure{Title: "test", Image: img,
		Under:   []SaliencyMap{{Title: "rollout", Values: []float32{1, 2, 3, 4}, Side: 2, Stretch: true}},
		Columns: []SaliencyColumn{{Heading: "a label 90%", Maps: []SaliencyMap{{Title: "gradient × input", Values: hot, Side: r}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.WriteTo(&buf, "png"); err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w, h := f.PixelSize()
	if b := m.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("PNG is %v, want %dx%d", b, w, h)
	}
	// The hot corner is drawn brighter than the cold rest.
	o := overlay(img, SaliencyMap{Values: hot, Side: r}, moreland.ExtendedBlackBody())
	lum := func(x, y int) float64 {
		c := color.GrayModel.Convert(o.At(x, y)).(color.Gray)
		return float64(c.Y)
	}
	if hotL, coldL := lum(3, 3), lum(24, 24); hotL < coldL+60 {
		t.Errorf("hot corner luminance %g, cold %g", hotL, coldL)
	}
	_, err = Saliency(SaliencyFigure{Image: img, Columns: []SaliencyColumn{{Maps: []SaliencyMap{{Values: hot, Side: 4}}}}})
	if err == nil {
		t.Error("a map of 1024 values on a 4x4 grid was accepted")
	}
	if _, err := Saliency(SaliencyFigure{}); err == nil {
		t.Error("a figure without an image was accepted")
	}
}

// TestSaliencyScaling checks the magnitude scaling and the bilinear upsampling.
func TestSaliencyScaling(t *testing.T) {
	for i, test := range []struct {
		v       []float32
		stretch bool
		want    []float64
	}{
		{[]float32{-2, 1, 0, 2}, false, []float64{1, 0.5, 0, 1}},
		{[]float32{1, 2, 3, 5}, true, []float64{0, 0.25, 0.5, 1}},
		{[]float32{0, 0, 0, 0}, false, []float64{0, 0, 0, 0}},
		{[]float32{3, 3, 3, 3}, true, []float64{0, 0, 0, 0}},
	} {
		got := magnitudes(test.v, test.stretch)
		for j := range got {
			if math.Abs(got[j]-test.want[j]) > 1e-12 {
				t.Errorf("test %d: magnitudes %v, want %v", i, got, test.want)
				break
			}
		}
	}
	up := upsample([]float64{0, 1, 0, 1}, 2, 4, 4) // columns 0 and 1
	for y := range 4 {
		if row := up[y*4 : y*4+4]; row[0] != 0 || row[1] != 0.25 || row[2] != 0.75 || row[3] != 1 {
			t.Errorf("upsampled row %d = %v, want [0 0.25 0.75 1]", y, row)
		}
	}
}
