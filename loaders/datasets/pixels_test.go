package datasets

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/images"
)

// TestItemPixels checks that Item.Pixels decodes an encoded item as loaders/images
// does (libjpeg-turbo for JPEGs in a libjpeg build), takes raw pixels as they are,
// and names the item when it cannot.
func TestItemPixels(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(grey.Pix, []uint8{1, 2, 3, 4, 5, 6})
	// Colour edges, where Go's chroma upsampling and libjpeg-turbo's differ.
	edges := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range edges.Pix {
		edges.Pix[i] = uint8(i * 37)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, edges, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	photo := b.Bytes()
	for i, test := range []struct {
		it   Item
		want func() (*images.Image, error)
	}{
		{Item{Name: "a.jpg", Encoded: photo}, func() (*images.Image, error) { return images.DecodeBytes(photo, "a.jpg") }},
		{Item{Name: "b.png", Encoded: pngBytes(t, 7)}, func() (*images.Image, error) { return images.DecodeBytes(pngBytes(t, 7), "b.png") }},
		{Item{Name: "raw", Image: grey}, func() (*images.Image, error) {
			return &images.Image{Mode: images.ModeL, Width: 3, Height: 2, Pix: []uint8{1, 2, 3, 4, 5, 6}}, nil
		}},
	} {
		got, err := test.it.Pixels()
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		want, err := test.want()
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode != want.Mode || got.Width != want.Width || got.Height != want.Height || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("test %d (%s): got %v %dx%d %v, want %v %dx%d %v", i, test.it.Name, got.Mode, got.Width, got.Height, got.Pix,
				want.Mode, want.Width, want.Height, want.Pix)
		}
	}
	for i, test := range []struct {
		it   Item
		want []string
	}{
		{Item{Name: "empty"}, []string{"empty", "no image data"}},
		{Item{Name: "cut.jpg", Encoded: jpegBytes(t, 9)[:40]}, []string{"cut.jpg"}},
		{Item{Name: "nothing", Image: image.NewGray(image.Rect(0, 0, 0, 0))}, []string{"nothing", "empty"}},
	} {
		_, err := test.it.Pixels()
		wantErr(t, i, err, test.want...)
	}
}
