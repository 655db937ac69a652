package images

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// FuzzDecodePreprocess feeds arbitrary bytes to the decoders and, when they decode,
// to Preprocess: nothing may panic, and a decoded image must always preprocess.
func FuzzDecodePreprocess(f *testing.F) {
	small := image.NewNRGBA(image.Rect(0, 0, 3, 5))
	small.SetNRGBA(1, 2, color.NRGBA{9, 99, 199, 77})
	pal := image.NewPaletted(image.Rect(0, 0, 4, 2), color.Palette{color.Black, color.White})
	for _, s := range []struct {
		m   image.Image
		enc func(*bytes.Buffer, image.Image) error
	}{{small, encPNG}, {pal, encGIF}, {small, encBMP}, {small, encTIFF}, {small, encJPEG}} {
		var b bytes.Buffer
		if err := s.enc(&b, s.m); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	dir := testfix.Shared(f, "fixtures/preprocess/images")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A small pixel limit keeps forged headers from allocating gigabytes.
		img, err := decodeLimit(data, "fuzz", 1<<20)
		if err != nil {
			return
		}
		dst := make([]float32, 3*16*16)
		if err := Preprocess(img, 16, dst); err != nil {
			t.Fatalf("decoded %v %dx%d image does not preprocess: %v", img.Mode, img.Width, img.Height, err)
		}
	})
}
