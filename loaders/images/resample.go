package images

import (
	"fmt"
	"math"
)

// This file reproduces Pillow's Image.resize(size, BICUBIC) (src/libImaging/Resample.c)
// bit for bit: the filter's support widens with the downscale factor (antialiasing),
// taps are normalised in float64 and rounded to fixed point with precisionBits
// fractional bits, and the horizontal pass (rounded and clipped to uint8) runs before
// the vertical one. A pass whose dimension is unchanged is skipped, as in Pillow.
// Palette images are resized with nearest neighbour (Geometry.c's ImagingScaleAffine),
// because PIL's Image.resize forces NEAREST for modes P and 1.
//
// Every routine computes a window of the resized image only: CLIP keeps the centre
// crop, so the columns and rows the crop discards are never computed. Each output pixel
// depends only on its own taps, so the window equals the same region of a full resize.

// precisionBits is Pillow's PRECISION_BITS (32 - 8 - 2): 8 bits for the result and two
// for the overshoot of the bicubic lobes.
const precisionBits = 22

// bicubic is Pillow's bicubic_filter with a = -0.5 (support 2).
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// taps holds the filter of a window of output positions along one axis: output i of
// the window reads n = bounds[2i+1] inputs from bounds[2i], weighted by
// k[i*ksize:][:n] (fixed point) or kf[i*ksize:][:n] (float64, for mode I).
type taps struct {
	ksize  int
	bounds []int
	k      []int32
	kf     []float64
}

// compute fills t for outputs [from, to) of a resize from inSize to outSize, as
// Pillow's precompute_coeffs followed by normalize_coeffs_8bpc.
func (t *taps) compute(inSize, outSize, from, to int) {
	// Pillow keeps the box in float32: (double)(in1 - in0) / outSize.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := max(scale, 1)
	support := 2 * filterscale
	t.ksize = int(math.Ceil(support))*2 + 1
	n := to - from
	t.bounds = grow(t.bounds, 2*n)
	t.k = grow(t.k, n*t.ksize)
	t.kf = grow(t.kf, n*t.ksize)
	ss := 1 / filterscale
	for i := range n {
		center := (float64(from+i) + 0.5) * scale
		xmin := int(center - support + 0.5) // C's (int) truncates toward zero, as Go's does
		xmin = max(xmin, 0)
		xmax := min(int(center+support+0.5), inSize)
		cnt := max(xmax-xmin, 0)
		kf := t.kf[i*t.ksize : (i+1)*t.ksize]
		ww := 0.0
		for x := range cnt {
			w := bicubic((float64(x+xmin) - center + 0.5) * ss)
			kf[x] = w
			ww += w
		}
		for x := range cnt {
			if ww != 0 {
				kf[x] /= ww
			}
		}
		clear(kf[cnt:])
		k := t.k[i*t.ksize : (i+1)*t.ksize]
		for x, w := range kf {
			if w < 0 {
				k[x] = int32(-0.5 + w*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + w*(1<<precisionBits))
			}
		}
		t.bounds[2*i], t.bounds[2*i+1] = xmin, cnt
	}
}

// span returns the first input index and one past the last that outputs use.
func (t *taps) span() (first, last int) {
	n := len(t.bounds) / 2
	return t.bounds[0], t.bounds[2*(n-1)] + t.bounds[2*(n-1)+1]
}

// shift moves every window start by -off, for a source that begins at input off.
func (t *taps) shift(off int) {
	for i := 0; i < len(t.bounds); i += 2 {
		t.bounds[i] -= off
	}
}

// clip8 is Pillow's clip8: drop the fraction (arithmetic shift) and clamp to a byte.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// horizontal8 resamples rows of src (srcW pixels of ch bytes, row stride srcW*ch) into
// dst (len(t.bounds)/2 pixels a row), as ImagingResampleHorizontal_8bpc. The loops are
// specialised per channel count, the hot spot of preprocessing.
func horizontal8(dst, src []uint8, srcW, ch, rows int, t *taps) {
	const half = int32(1 << (precisionBits - 1))
	outW := len(t.bounds) / 2
	for y := range rows {
		in := src[y*srcW*ch : (y+1)*srcW*ch]
		out := dst[y*outW*ch : (y+1)*outW*ch]
		switch ch {
		case 1:
			for xx := range outW {
				xmin, n := t.bounds[2*xx], t.bounds[2*xx+1]
				k := t.k[xx*t.ksize : xx*t.ksize+n]
				px := in[xmin : xmin+n]
				s0 := half
				for x, kx := range k {
					s0 += int32(px[x]) * kx
				}
				out[xx] = clip8(s0)
			}
		case 3:
			for xx := range outW {
				xmin, n := t.bounds[2*xx], t.bounds[2*xx+1]
				k := t.k[xx*t.ksize : xx*t.ksize+n]
				px := in[xmin*3 : (xmin+n)*3]
				s0, s1, s2 := half, half, half
				for x, kx := range k {
					p := px[x*3 : x*3+3 : x*3+3]
					s0 += int32(p[0]) * kx
					s1 += int32(p[1]) * kx
					s2 += int32(p[2]) * kx
				}
				o := out[xx*3 : xx*3+3 : xx*3+3]
				o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
			}
		default:
			for xx := range outW {
				xmin, n := t.bounds[2*xx], t.bounds[2*xx+1]
				k := t.k[xx*t.ksize : xx*t.ksize+n]
				px := in[xmin*4 : (xmin+n)*4]
				s0, s1, s2, s3 := half, half, half, half
				for x, kx := range k {
					p := px[x*4 : x*4+4 : x*4+4]
					s0 += int32(p[0]) * kx
					s1 += int32(p[1]) * kx
					s2 += int32(p[2]) * kx
					s3 += int32(p[3]) * kx
				}
				o := out[xx*4 : xx*4+4 : xx*4+4]
				o[0], o[1], o[2], o[3] = clip8(s0), clip8(s1), clip8(s2), clip8(s3)
			}
		}
	}
}

// vertical8 resamples rows of src (rowLen bytes each) into len(t.bounds)/2 rows of dst,
// as ImagingResampleVertical_8bpc. acc is scratch of rowLen int32s; summing row by row
// gives the same integers as Pillow's column-wise loop, with sequential memory access.
func vertical8(dst, src []uint8, rowLen int, t *taps, acc []int32) {
	outH := len(t.bounds) / 2
	for yy := range outH {
		ymin, n := t.bounds[2*yy], t.bounds[2*yy+1]
		for i := range acc[:rowLen] {
			acc[i] = 1 << (precisionBits - 1)
		}
		for y, ky := range t.k[yy*t.ksize : yy*t.ksize+n] {
			row := src[(ymin+y)*rowLen : (ymin+y+1)*rowLen]
			a := acc[:len(row)]
			for i, v := range row {
				a[i] += int32(v) * ky
			}
		}
		out := dst[yy*rowLen : (yy+1)*rowLen]
		for i, v := range acc[:rowLen] {
			out[i] = clip8(v)
		}
	}
}

// roundUp is Pillow's ROUND_UP: round half away from zero.
func roundUp(f float64) int32 {
	if f >= 0 {
		return int32(f + 0.5)
	}
	return int32(f - 0.5)
}

// horizontal32 and vertical32 are ImagingResample{Horizontal,Vertical}_32bpc for mode I:
// float64 taps, each pass rounded to int32.
func horizontal32(dst, src []int32, srcW, rows int, t *taps) {
	outW := len(t.bounds) / 2
	for y := range rows {
		in := src[y*srcW : (y+1)*srcW]
		for xx := range outW {
			xmin, n := t.bounds[2*xx], t.bounds[2*xx+1]
			s := 0.0
			for x, kx := range t.kf[xx*t.ksize : xx*t.ksize+n] {
				s += float64(in[xmin+x]) * kx
			}
			dst[y*outW+xx] = roundUp(s)
		}
	}
}

func vertical32(dst, src []int32, rowLen int, t *taps) {
	outH := len(t.bounds) / 2
	for yy := range outH {
		ymin, n := t.bounds[2*yy], t.bounds[2*yy+1]
		k := t.kf[yy*t.ksize : yy*t.ksize+n]
		for x := range rowLen {
			s := 0.0
			for y, ky := range k {
				s += float64(src[(ymin+y)*rowLen+x]) * ky
			}
			dst[yy*rowLen+x] = roundUp(s)
		}
	}
}

// nearestIndex returns the source index of outputs [from, to) of a nearest-neighbour
// resize from inSize to outSize, -1 where it falls outside. It accumulates the position
// in float64 from output 0 exactly as ImagingScaleAffine does, so that ties land on
// the same side.
func nearestIndex(dst []int, inSize, outSize, from, to int) []int {
	dst = grow(dst, to-from)
	a := float64(float32(inSize)) / float64(outSize)
	o := a * 0.5
	for x := 0; x < to; x++ {
		if x >= from {
			i := -1
			if o >= 0 {
				i = int(o)
			}
			if i >= inSize {
				i = -1
			}
			dst[x-from] = i
		}
		o += a
	}
	return dst
}

// scratch holds the buffers of one resize so that a worker reuses them image after image.
type scratch struct {
	th, tv  taps
	pre     []uint8 // premultiplied copy of an RGBA image
	tmp     []uint8 // horizontal pass output
	out     []uint8 // window pixels
	acc     []int32
	tmp32   []int32
	out32   []int32
	ix, iy  []int
	rgb     []uint8
	winMode Mode
	winW    int
	winH    int
	palette [][3]uint8
}

// grow returns s resliced to n elements, reallocating only when its capacity is short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// resizeWindow resizes img to outW x outH with PIL's rules and keeps the window of
// cw x ch pixels at (x0, y0), leaving it in s.out (s.out32 for mode I) in the mode
// s.winMode. The caller has checked that the window lies inside the output.
func (s *scratch) resizeWindow(img *Image, outW, outH, x0, y0, cw, ch int) {
	s.winW, s.winH, s.palette = cw, ch, img.Palette
	switch img.Mode {
	case ModeP:
		s.winMode = ModeP
		s.ix = nearestIndex(s.ix, img.Width, outW, x0, x0+cw)
		s.iy = nearestIndex(s.iy, img.Height, outH, y0, y0+ch)
		s.out = grow(s.out, cw*ch)
		for y, iy := range s.iy {
			row := s.out[y*cw : (y+1)*cw]
			clear(row) // Pillow fills pixels that map outside with index 0
			if iy < 0 {
				continue
			}
			in := img.Pix[iy*img.Width : (iy+1)*img.Width]
			for x, ix := range s.ix {
				if ix >= 0 {
					row[x] = in[ix]
				}
			}
		}
		return
	case ModeI:
		s.winMode = ModeI
		s.resize32(img, outW, outH, x0, y0, cw, ch)
		return
	}
	src := img.Pix
	nch := img.Mode.Channels()
	// PIL resizes RGBA through premultiplied RGBa (Image.resize) and converts back,
	// unless the size is unchanged: then it returns a copy before converting.
	premul := img.Mode == ModeRGBA && (outW != img.Width || outH != img.Height)
	if premul {
		s.pre = grow(s.pre, len(src))
		premultiply(s.pre, src)
		src = s.pre
	}
	s.winMode = img.Mode
	needH := outW != img.Width
	needV := outH != img.Height
	first, last := s.sourceRows(img.Height, outH, y0, ch)
	rows := last - first
	var mid []uint8
	midW := img.Width
	if needH {
		s.th.compute(img.Width, outW, x0, x0+cw)
		s.tmp = grow(s.tmp, rows*cw*nch)
		horizontal8(s.tmp, src[first*img.Width*nch:], img.Width, nch, rows, &s.th)
		mid, midW = s.tmp, cw
	} else {
		mid = src[first*img.Width*nch : last*img.Width*nch]
	}
	s.out = grow(s.out, cw*ch*nch)
	if needV {
		s.acc = grow(s.acc, midW*nch)
		if needH {
			vertical8(s.out, mid, cw*nch, &s.tv, s.acc)
		} else {
			// Width unchanged: run the vertical pass over the window's columns only.
			s.tmp = grow(s.tmp, rows*cw*nch)
			copyCols(s.tmp, mid, midW*nch, x0*nch, cw*nch, rows)
			vertical8(s.out, s.tmp, cw*nch, &s.tv, s.acc)
		}
	} else {
		off := x0 * nch
		if needH {
			off = 0
		}
		copyCols(s.out, mid, midW*nch, off, cw*nch, ch)
	}
	if premul {
		unpremultiplyInPlace(s.out)
	}
}

// sourceRows returns the rows [first,last) of a source inH rows high that the output
// rows [y0,y0+ch) of an outH-row resize read. When the height changes it computes the
// vertical taps for those rows (s.tv), relative to first.
func (s *scratch) sourceRows(inH, outH, y0, ch int) (first, last int) {
	if outH == inH {
		return y0, y0 + ch
	}
	s.tv.compute(inH, outH, y0, y0+ch)
	first, last = s.tv.span()
	s.tv.shift(first)
	return first, last
}

// copyCols copies rows of n bytes starting at byte off of each stride-byte row of src.
func copyCols(dst, src []uint8, stride, off, n, rows int) {
	for y := range rows {
		copy(dst[y*n:(y+1)*n], src[y*stride+off:y*stride+off+n])
	}
}

func (s *scratch) resize32(img *Image, outW, outH, x0, y0, cw, ch int) {
	needH := outW != img.Width
	needV := outH != img.Height
	first, last := s.sourceRows(img.Height, outH, y0, ch)
	rows := last - first
	s.tmp32 = grow(s.tmp32, rows*cw)
	if needH {
		s.th.compute(img.Width, outW, x0, x0+cw)
		horizontal32(s.tmp32, img.Pix32[first*img.Width:], img.Width, rows, &s.th)
	} else {
		for y := range rows {
			copy(s.tmp32[y*cw:(y+1)*cw], img.Pix32[(first+y)*img.Width+x0:])
		}
	}
	s.out32 = grow(s.out32, cw*ch)
	if needV {
		vertical32(s.out32, s.tmp32, cw, &s.tv)
	} else {
		copy(s.out32, s.tmp32)
	}
}

// muldiv255 is Pillow's MULDIV255: a*b/255 rounded, without a division.
func muldiv255(a, b uint32) uint32 {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

// premultiply converts RGBA to RGBa as Pillow's rgbA2rgba.
func premultiply(dst, src []uint8) {
	for i := 0; i+3 < len(src); i += 4 {
		a := uint32(src[i+3])
		dst[i] = uint8(muldiv255(uint32(src[i]), a))
		dst[i+1] = uint8(muldiv255(uint32(src[i+1]), a))
		dst[i+2] = uint8(muldiv255(uint32(src[i+2]), a))
		dst[i+3] = src[i+3]
	}
}

// unpremultiplyInPlace converts RGBa back to RGBA as Pillow's rgba2rgbA.
func unpremultiplyInPlace(p []uint8) {
	for i := 0; i+3 < len(p); i += 4 {
		a := uint32(p[i+3])
		if a == 0 || a == 255 {
			continue
		}
		for c := range 3 {
			p[i+c] = uint8(min(255*uint32(p[i+c])/a, 255))
		}
	}
}

// toRGB converts the window in s to interleaved RGB as PIL's convert("RGB").
func (s *scratch) toRGB() []uint8 {
	n := s.winW * s.winH
	s.rgb = grow(s.rgb, n*3)
	rgb := s.rgb
	switch s.winMode {
	case ModeL:
		for i, v := range s.out[:n] {
			rgb[3*i], rgb[3*i+1], rgb[3*i+2] = v, v, v
		}
	case ModeRGB:
		copy(rgb, s.out[:n*3])
	case ModeRGBA:
		for i := range n {
			copy(rgb[3*i:3*i+3], s.out[4*i:4*i+3])
		}
	case ModeCMYK:
		for i := range n {
			p := s.out[4*i : 4*i+4]
			nk := 255 - int32(p[3])
			for c := range 3 {
				// Pillow's cmyk2rgb: CLIP8(nk - MULDIV255(c, nk)).
				v := nk - int32(muldiv255(uint32(p[c]), uint32(nk)))
				rgb[3*i+c] = uint8(max(min(v, 255), 0))
			}
		}
	case ModeP:
		for i, v := range s.out[:n] {
			var c [3]uint8
			if int(v) < len(s.palette) {
				c = s.palette[v]
			}
			rgb[3*i], rgb[3*i+1], rgb[3*i+2] = c[0], c[1], c[2]
		}
	case ModeI:
		for i, v := range s.out32[:n] {
			b := uint8(max(min(v, 255), 0)) // Pillow's i2rgb clamps, it does not scale
			rgb[3*i], rgb[3*i+1], rgb[3*i+2] = b, b, b
		}
	}
	return rgb
}

// ResizedSize returns the size torchvision's Resize(size) gives a w x h image: the
// shorter side becomes size and the longer int(size * long / short), truncated.
func ResizedSize(w, h, size int) (ow, oh int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// CropOffset returns torchvision's CenterCrop offset int(round((n - size) / 2.0)), with
// Python's round-half-to-even.
func CropOffset(n, size int) int {
	return int(math.RoundToEven(float64(n-size) / 2))
}

// Resize returns img resized to w x h as PIL's img.resize((w, h), Image.BICUBIC):
// antialiased bicubic for L, RGB, RGBA (through premultiplied alpha), CMYK and I;
// nearest neighbour for P, as PIL forces. The result has img's mode.
func Resize(img *Image, w, h int) (*Image, error) {
	if err := img.check(); err != nil {
		return nil, err
	}
	if w <= 0 || h <= 0 || w > MaxPixels/h {
		return nil, fmt.Errorf("images: cannot resize to %dx%d", w, h)
	}
	var s scratch
	s.resizeWindow(img, w, h, 0, 0, w, h)
	out := &Image{Mode: img.Mode, Width: w, Height: h, Palette: img.Palette}
	if img.Mode == ModeI {
		out.Pix32 = s.out32
	} else {
		out.Pix = s.out
	}
	return out, nil
}

// RGB returns img's pixels as interleaved 8-bit RGB, as PIL's img.convert("RGB"):
// grey is replicated, alpha dropped (not composited), CMYK converted with Pillow's
// integer formula, palette indices looked up, mode I clamped to [0, 255].
func (img *Image) RGB() []uint8 {
	s := scratch{winMode: img.Mode, winW: img.Width, winH: img.Height, palette: img.Palette, out: img.Pix, out32: img.Pix32}
	return s.toRGB()
}

// check reports an Image whose buffers do not match its size and mode.
func (img *Image) check() error {
	if img == nil || img.Width <= 0 || img.Height <= 0 || img.Width > MaxPixels/img.Height {
		return fmt.Errorf("images: empty or oversized image")
	}
	n := img.Width * img.Height
	if img.Mode == ModeI {
		if len(img.Pix32) != n {
			return fmt.Errorf("images: mode I image of %dx%d has %d samples", img.Width, img.Height, len(img.Pix32))
		}
		return nil
	}
	if img.Mode > ModeI {
		return fmt.Errorf("images: unknown mode %v", img.Mode)
	}
	if len(img.Pix) != n*img.Mode.Channels() {
		return fmt.Errorf("images: mode %v image of %dx%d has %d bytes, want %d", img.Mode, img.Width, img.Height, len(img.Pix), n*img.Mode.Channels())
	}
	return nil
}
