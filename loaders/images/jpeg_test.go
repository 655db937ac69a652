package images

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"strings"
	"testing"
)

// TestJPEGDecoders decodes JPEGs of each kind this package meets (grey, colour at two
// qualities, progressive) with the build's decoder and with Go's, and checks that they
// agree on mode and size and, on smooth pictures, differ by at most what two correct
// decoders do (a row stride, channel order or mode mistake gives tens of levels on
// average; Go's chroma upsampling alone gives a few at sharp colour edges). With
// libjpeg, a file that ends early, even by its end marker only, is refused naming it,
// as PIL refuses it.
func TestJPEGDecoders(t *testing.T) {
	rgb := image.NewRGBA(image.Rect(0, 0, 67, 45))
	grey := image.NewGray(rgb.Rect)
	for y := 0; y < 45; y++ {
		for x := 0; x < 67; x++ {
			rgb.SetRGBA(x, y, color.RGBA{uint8(3 * x), uint8(5 * y), uint8(2 * (x + y)), 255})
			grey.SetGray(x, y, color.Gray{uint8(2*x + y)})
		}
	}
	progressive, err := os.ReadFile("testdata/progressive.jpg")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"grey.jpg":        encode(t, grey, encJPEG),
		"q75.jpg":         encode(t, rgb, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 75}) }),
		"q100.jpg":        encode(t, rgb, encJPEG),
		"progressive.jpg": progressive,
	}
	t.Logf("decoder: %s", JPEGDecoder)
	for name, data := range files {
		got, err := DecodeBytes(data, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want, err := FromImage(m)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode != want.Mode || got.Width != want.Width || got.Height != want.Height || len(got.Pix) != len(want.Pix) {
			t.Fatalf("%s: got %v %dx%d (%d bytes), Go's decoder %v %dx%d (%d bytes)", name, got.Mode, got.Width, got.Height, len(got.Pix),
				want.Mode, want.Width, want.Height, len(want.Pix))
		}
		var sum, most int
		for i := range got.Pix {
			d := int(got.Pix[i]) - int(want.Pix[i])
			sum, most = sum+max(d, -d), max(most, d, -d)
		}
		mean := float64(sum) / float64(len(got.Pix))
		t.Logf("%-16s %v against Go's decoder: max %d, mean %.3f levels", name, got.Mode, most, mean)
		if mean > 3 || !libjpeg && most != 0 {
			t.Errorf("%s: differs from Go's decoder by max %d, mean %.3f levels", name, most, mean)
		}
	}
	if !libjpeg {
		return
	}
	whole := files["q75.jpg"]
	for _, cut := range []int{2, len(whole) / 3} {
		_, err := DecodeBytes(whole[:len(whole)-cut], "cut.jpg")
		if err == nil || !strings.Contains(err.Error(), "cut.jpg") || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("without its last %d bytes: got %v, want an error naming cut.jpg and saying truncated", cut, err)
		}
	}
}
