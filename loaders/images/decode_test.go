package images

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// encode writes m with enc and fails the test on error.
func encode(t *testing.T, m image.Image, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	encPNG  = func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }
	encGIF  = func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }
	encBMP  = func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) }
	encTIFF = func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }
	encJPEG = func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 100}) }
)

// TestDecodeModes checks that each format and colour model lands in the mode PIL
// would open it in, and that RGB() equals PIL's convert("RGB") on a 2x1 image.
func TestDecodeModes(t *testing.T) {
	rect := image.Rect(0, 0, 2, 1)

	nrgba := image.NewNRGBA(rect)
	nrgba.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 0}) // fully transparent: colour kept
	nrgba.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 128})

	opaque := image.NewRGBA(rect)
	opaque.SetRGBA(0, 0, color.RGBA{1, 2, 3, 255})
	opaque.SetRGBA(1, 0, color.RGBA{250, 128, 0, 255})

	gray := image.NewGray(rect)
	gray.SetGray(0, 0, color.Gray{7})
	gray.SetGray(1, 0, color.Gray{240})

	gray16 := image.NewGray16(rect)
	gray16.SetGray16(0, 0, color.Gray16{100}) // PIL's I -> RGB clamps, it does not scale
	gray16.SetGray16(1, 0, color.Gray16{300})

	pal := color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	paletted := image.NewPaletted(rect, pal)
	paletted.SetColorIndex(0, 0, 2)
	paletted.SetColorIndex(1, 0, 1)

	var ramp color.Palette
	for i := range 4 {
		ramp = append(ramp, color.RGBA{uint8(i), uint8(i), uint8(i), 255})
	}
	grayGIF := image.NewPaletted(rect, ramp)
	grayGIF.SetColorIndex(0, 0, 3)
	grayGIF.SetColorIndex(1, 0, 1)

	for i, test := range []struct {
		name string
		data []byte
		mode Mode
		rgb  []uint8
	}{
		{"rgba.png", encode(t, nrgba, encPNG), ModeRGBA, []uint8{200, 100, 50, 10, 20, 30}},
		{"rgb.png", encode(t, opaque, encPNG), ModeRGB, []uint8{1, 2, 3, 250, 128, 0}},
		{"gray.png", encode(t, gray, encPNG), ModeL, []uint8{7, 7, 7, 240, 240, 240}},
		{"gray16.png", encode(t, gray16, encPNG), ModeI, []uint8{100, 100, 100, 255, 255, 255}},
		{"palette.png", encode(t, paletted, encPNG), ModeP, []uint8{0, 0, 255, 255, 0, 0}},
		{"palette.gif", encode(t, paletted, encGIF), ModeP, []uint8{0, 0, 255, 255, 0, 0}},
		{"ramp.gif", encode(t, grayGIF, encGIF), ModeL, []uint8{3, 3, 3, 1, 1, 1}},
		{"rgb.bmp", encode(t, opaque, encBMP), ModeRGB, []uint8{1, 2, 3, 250, 128, 0}},
		{"palette.bmp", encode(t, paletted, encBMP), ModeP, []uint8{0, 0, 255, 255, 0, 0}},
		{"rgb.tiff", encode(t, opaque, encTIFF), ModeRGB, []uint8{1, 2, 3, 250, 128, 0}},
		{"rgba.tiff", encode(t, nrgba, encTIFF), ModeRGBA, []uint8{200, 100, 50, 10, 20, 30}},
		{"gray16.tiff", encode(t, gray16, encTIFF), ModeI, []uint8{100, 100, 100, 255, 255, 255}},
		{"gray.jpg", encode(t, gray, encJPEG), ModeL, nil},
		{"rgb.jpg", encode(t, opaque, encJPEG), ModeRGB, nil},
	} {
		img, err := Decode(bytes.NewReader(test.data), test.name)
		if err != nil {
			t.Errorf("test %d: %s: %v", i, test.name, err)
			continue
		}
		if img.Mode != test.mode || img.Width != 2 || img.Height != 1 {
			t.Errorf("test %d: %s: got %v %dx%d want %v 2x1", i, test.name, img.Mode, img.Width, img.Height, test.mode)
		}
		if test.rgb != nil && !bytes.Equal(img.RGB(), test.rgb) {
			t.Errorf("test %d: %s: got RGB %v want %v", i, test.name, img.RGB(), test.rgb)
		}
	}
}

// TestCMYKToRGB checks Pillow's cmyk2rgb: nk - c*nk/255 (rounded), nk = 255 - k.
func TestCMYKToRGB(t *testing.T) {
	m := image.NewCMYK(image.Rect(0, 0, 4, 1))
	for x, c := range []color.CMYK{{0, 0, 0, 0}, {255, 0, 0, 0}, {0, 0, 0, 128}, {100, 50, 200, 30}} {
		m.SetCMYK(x, 0, c)
	}
	img, err := FromImage(m)
	if err != nil {
		t.Fatal(err)
	}
	// 100,50,200 with k=30: nk=225; 225-88=137, 225-44=181, 225-176=49.
	want := []uint8{255, 255, 255, 0, 255, 255, 127, 127, 127, 137, 181, 49}
	if img.Mode != ModeCMYK || !bytes.Equal(img.RGB(), want) {
		t.Errorf("got %v %v want CMYK %v", img.Mode, img.RGB(), want)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := encode(t, image.NewGray(image.Rect(0, 0, 8, 8)), encPNG)
	huge := append([]byte(nil), good...)
	// IHDR width at bytes 16..19: claim 1<<30 pixels wide (the CRC then fails
	// too, but the size check must come first and not allocate).
	huge[16], huge[17], huge[18], huge[19] = 0x40, 0, 0, 0
	for i, test := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.png", nil, "not a JPEG, PNG"},
		{"text.jpg", []byte("hello world"), "not a JPEG, PNG"},
		{"truncated.png", good[:len(good)/2], "truncated.png"},
		{"huge.png", huge, "huge.png"},
		{"truncated.jpg", encode(t, image.NewGray(image.Rect(0, 0, 16, 16)), encJPEG)[:100], "truncated.jpg"},
	} {
		_, err := Decode(bytes.NewReader(test.data), test.name)
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), test.name) || !strings.HasPrefix(err.Error(), "images: ") {
			t.Errorf("test %d: got %v want an error naming %s containing %q", i, err, test.name, test.want)
		}
	}
	if _, err := decodeLimit(good, "big.png", 63); err == nil || !strings.Contains(err.Error(), "big.png: png image of 8x8 pixels is empty or over the limit of 63") {
		t.Errorf("pixel limit: got %v", err)
	}
	if _, err := DecodeFile("/nonexistent/x.png"); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.png") {
		t.Errorf("missing file: got %v", err)
	}
}

// TestFromSubImage checks that a sub-image (bounds not at the origin) converts its own
// pixels, not the parent's.
func TestFromSubImage(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 3))
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	img, err := FromImage(g.SubImage(image.Rect(1, 1, 3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{5, 6, 9, 10}; img.Width != 2 || img.Height != 2 || !bytes.Equal(img.Pix, want) {
		t.Errorf("got %dx%d %v want 2x2 %v", img.Width, img.Height, img.Pix, want)
	}
}
