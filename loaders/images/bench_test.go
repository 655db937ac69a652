package images

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// benchSink keeps benchmark results alive so the compiler cannot drop the work.
var benchSink []float32

// photoJPEG returns a w x h JPEG with smooth colour gradients plus noise, standing in
// for a typical dataset photo (Imagenette's are ~500x375).
func photoJPEG(b *testing.B, w, h int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(32))
			m.SetRGBA(x, y, color.RGBA{uint8(x*255/w) + n, uint8(y*255/h) + n, uint8((x+y)*127/(w+h)) + n, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchPreprocess(b *testing.B, w, h, size int, decode bool) {
	data := photoJPEG(b, w, h)
	img, err := DecodeBytes(data, "bench.jpg")
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, 3*size*size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if decode {
			err = PreprocessBytes(data, "bench.jpg", size, dst)
		} else {
			err = Preprocess(img, size, dst)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
	benchSink = dst
}

// BenchmarkPreprocess224 times resize, crop and normalise of a decoded 500x375 image.
func BenchmarkPreprocess224(b *testing.B) { benchPreprocess(b, 500, 375, 224, false) }

// BenchmarkDecodePreprocess224 adds JPEG decoding, the usual bottleneck of a pipeline.
func BenchmarkDecodePreprocess224(b *testing.B) { benchPreprocess(b, 500, 375, 224, true) }

// ExamplePreprocess shows the CLIP input of a tiny grey image: the 2x2 checkerboard is
// upscaled to 4x4 (bicubic overshoot clipped to 0 and 255: bytes 0, 40, 215, 255 in
// the first row), then normalised with the red channel's mean and std.
func ExamplePreprocess() {
	img := &Image{Mode: ModeL, Width: 2, Height: 2, Pix: []uint8{0, 255, 255, 0}}
	dst := make([]float32, 3*4*4)
	if err := Preprocess(img, 4, dst); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("R row 0: %.3f\n", dst[:4])
	// Output:
	// R row 0: [-1.792 -1.208 1.346 1.930]
}
