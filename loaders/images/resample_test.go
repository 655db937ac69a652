package images

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// randomImage returns a w x h image of mode m with pixels from a fixed PCG stream.
func randomImage(m Mode, w, h int, seed uint64) *Image {
	r := rand.New(rand.NewPCG(seed, 7))
	img := &Image{Mode: m, Width: w, Height: h}
	switch m {
	case ModeI:
		img.Pix32 = make([]int32, w*h)
		for i := range img.Pix32 {
			img.Pix32[i] = int32(r.IntN(1 << 16))
		}
		return img
	case ModeP:
		img.Palette = [][3]uint8{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}, {13, 14, 15}}
	}
	img.Pix = make([]uint8, w*h*m.Channels())
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
		if m == ModeP {
			img.Pix[i] %= 6 // index 5 is past the palette: black
		}
	}
	return img
}

// crop returns the w x h window of img at (x, y).
func crop(img *Image, x0, y0, w, h int) *Image {
	out := &Image{Mode: img.Mode, Width: w, Height: h, Palette: img.Palette}
	if img.Mode == ModeI {
		for y := y0; y < y0+h; y++ {
			out.Pix32 = append(out.Pix32, img.Pix32[y*img.Width+x0:y*img.Width+x0+w]...)
		}
		return out
	}
	c := img.Mode.Channels()
	for y := y0; y < y0+h; y++ {
		out.Pix = append(out.Pix, img.Pix[(y*img.Width+x0)*c:(y*img.Width+x0+w)*c]...)
	}
	return out
}

// TestWindowEqualsFullResize checks the shortcut Preprocess relies on: resampling only
// the centre crop gives the same bytes as resizing the whole image and cropping it.
func TestWindowEqualsFullResize(t *testing.T) {
	for i, test := range []struct {
		mode         Mode
		w, h, ow, oh int
	}{
		{ModeRGB, 37, 23, 15, 9},   // downscale both
		{ModeRGB, 11, 7, 40, 25},   // upscale both
		{ModeL, 30, 20, 30, 13},    // width unchanged: no horizontal pass
		{ModeL, 30, 20, 17, 20},    // height unchanged: no vertical pass
		{ModeRGBA, 25, 31, 12, 50}, // premultiplied path
		{ModeRGBA, 9, 9, 9, 9},     // same size: no premultiply round trip
		{ModeCMYK, 16, 10, 7, 5},
		{ModeP, 13, 17, 29, 8},
		{ModeI, 19, 12, 8, 30},
	} {
		img := randomImage(test.mode, test.w, test.h, uint64(i))
		full, err := Resize(img, test.ow, test.oh)
		if err != nil {
			t.Fatal(err)
		}
		for _, win := range [][4]int{{0, 0, test.ow, test.oh}, {1, 2, test.ow - 3, test.oh - 4}, {test.ow - 2, test.oh - 1, 2, 1}} {
			var s scratch
			s.resizeWindow(img, test.ow, test.oh, win[0], win[1], win[2], win[3])
			want := crop(full, win[0], win[1], win[2], win[3])
			if test.mode == ModeI {
				if !slices.Equal(s.out32[:win[2]*win[3]], want.Pix32) {
					t.Errorf("test %d: window %v: got %v want %v", i, win, s.out32[:win[2]*win[3]], want.Pix32)
				}
			} else if got := s.out[:len(want.Pix)]; !slices.Equal(got, want.Pix) {
				t.Errorf("test %d: window %v: got %v want %v", i, win, got, want.Pix)
			}
		}
		if test.w == test.ow && test.h == test.oh && !slices.Equal(full.Pix, img.Pix) {
			t.Errorf("test %d: same-size resize changed pixels", i)
		}
	}
}

// TestResizeHandValues checks outputs worked out by hand from Pillow's formulas.
func TestResizeHandValues(t *testing.T) {
	for i, test := range []struct {
		in   []uint8
		ow   int
		want []uint8
	}{
		// 2 -> 4: taps of output 0 are bicubic(0.25), bicubic(1.25) = 0.8671875,
		// -0.0703125, normalised to 1.0882, -0.0882 (91.18); output 1 has
		// 0.7929, 0.2071 (120.71, rounded half up by the 2^21 bias).
		{[]uint8{100, 200}, 4, []uint8{91, 121, 179, 209}},
		// Overshoot clips: 277.5 -> 255 and -22.5 -> 0.
		{[]uint8{255, 0}, 4, []uint8{255, 202, 53, 0}},
		// A constant survives any scale: the taps sum to one.
		{[]uint8{77, 77, 77, 77, 77, 77, 77}, 3, []uint8{77, 77, 77}},
		{[]uint8{77, 77, 77}, 11, []uint8{77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77}},
		// 4 -> 2 (antialiased: support 4, taps at half spacing): output 0 has
		// 0.4587, 0.4587, 0.1198, -0.0372, so 255*(0.1198-0.0372) = 21.07.
		{[]uint8{0, 0, 255, 255}, 2, []uint8{21, 234}},
	} {
		img := &Image{Mode: ModeL, Width: len(test.in), Height: 1, Pix: test.in}
		got, err := Resize(img, test.ow, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Pix, test.want) {
			t.Errorf("test %d: got %v want %v", i, got.Pix, test.want)
		}
	}
}

// TestNearestIndex checks PIL's nearest neighbour positions ((x + 0.5) * in/out, floored).
func TestNearestIndex(t *testing.T) {
	for i, test := range []struct {
		in, out, from, to int
		want              []int
	}{
		{2, 4, 0, 4, []int{0, 0, 1, 1}},
		{4, 2, 0, 2, []int{1, 3}},
		{3, 7, 2, 6, []int{1, 1, 1, 2}}, // (x+0.5)*3/7 = 1.07, 1.5, 1.93, 2.36
		{5, 5, 0, 5, []int{0, 1, 2, 3, 4}},
	} {
		if got := nearestIndex(nil, test.in, test.out, test.from, test.to); !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
}

func TestSizes(t *testing.T) {
	for i, test := range []struct {
		w, h, size, ow, oh, left, top int
	}{
		{500, 375, 224, 298, 224, 37, 0}, // 224*500/375 = 298.67; (298-224)/2 = 37
		{375, 500, 224, 224, 298, 0, 37},
		{768, 576, 224, 298, 224, 37, 0},
		{150, 103, 64, 93, 64, 14, 0}, // 64*150/103 = 93.2; 29/2 = 14.5 rounds to even 14
		{28, 28, 224, 224, 224, 0, 0},
		{300, 100, 64, 192, 64, 64, 0},
		{1, 1000, 224, 224, 224000, 0, 111888},
	} {
		ow, oh := ResizedSize(test.w, test.h, test.size)
		left, top := CropOffset(ow, test.size), CropOffset(oh, test.size)
		if ow != test.ow || oh != test.oh || left != test.left || top != test.top {
			t.Errorf("test %d: got %dx%d at (%d,%d) want %dx%d at (%d,%d)", i, ow, oh, left, top, test.ow, test.oh, test.left, test.top)
		}
	}
}

func TestPreprocessRejectsBadInput(t *testing.T) {
	img := randomImage(ModeRGB, 4, 4, 1)
	for i, test := range []struct {
		img  *Image
		size int
		dst  int
	}{
		{img, 0, 0},
		{img, MaxSize + 1, 0},
		{img, 4, 3*16 - 1},
		{nil, 4, 48},
		{&Image{Mode: ModeRGB, Width: 4, Height: 4, Pix: make([]uint8, 47)}, 4, 48},
		{&Image{Mode: Mode(9), Width: 1, Height: 1, Pix: make([]uint8, 1)}, 4, 48},
	} {
		if err := Preprocess(test.img, test.size, make([]float32, test.dst)); err == nil {
			t.Errorf("test %d: got nil error", i)
		}
	}
	// An extreme aspect ratio resamples only the crop, not the 224000-row image.
	thin := randomImage(ModeL, 1, 1000, 3)
	dst := make([]float32, 3*224*224)
	if err := Preprocess(thin, 224, dst); err != nil {
		t.Fatal(err)
	}
}
