// Package images decodes pictures and applies CLIP's preprocessing exactly as OpenAI's
// clip.py does with PIL and torchvision:
//
//	Resize(N, BICUBIC) -> CenterCrop(N) -> convert("RGB") -> ToTensor() -> Normalize(mean, std)
//
// Decoding follows PIL's image modes (L, RGB, RGBA, CMYK, P, I) because the mode decides
// how PIL resamples: palette images are resized with nearest neighbour, RGBA through
// premultiplied alpha, 16-bit greys as 32-bit integers. Resampling reproduces Pillow's
// Resample.c (antialiased bicubic, a = -0.5, two separable fixed-point passes rounded to
// uint8 between and after them), so PNG inputs agree with PIL to the last bit of each
// uint8. JPEG inputs are too when built with the libjpeg tag, which decodes them with
// libjpeg-turbo as PIL does (JPEGDecoder); Go's image/jpeg differs slightly.
//
// Shapes: S is the output side (224 for ViT-B/32), K a batch of images; pixels are CHW
// float32 [3,S,S], batches [K,3,S,S].
package images

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"sync"

	// Registered decoders: image.Decode dispatches on the file's magic bytes.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Mode is the PIL image mode a decoded image has.
type Mode uint8

// The modes PIL gives the files Go can decode.
const (
	ModeL    Mode = iota // 8-bit grey, 1 channel
	ModeRGB              // 8-bit RGB, 3 channels
	ModeRGBA             // 8-bit RGB with straight (non-premultiplied) alpha, 4 channels
	ModeCMYK             // 8-bit CMYK (0 = no ink), 4 channels
	ModeP                // palette indices, 1 channel, with Image.Palette
	ModeI                // 32-bit integer grey (PIL opens 16-bit grey PNG and TIFF so), Image.Pix32
)

// Channels returns the number of interleaved 8-bit samples per pixel in Image.Pix
// (1 for ModeI, whose samples live in Image.Pix32).
func (m Mode) Channels() int {
	switch m {
	case ModeRGB:
		return 3
	case ModeRGBA, ModeCMYK:
		return 4
	}
	return 1
}

// String returns PIL's name for the mode.
func (m Mode) String() string {
	switch m {
	case ModeL:
		return "L"
	case ModeRGB:
		return "RGB"
	case ModeRGBA:
		return "RGBA"
	case ModeCMYK:
		return "CMYK"
	case ModeP:
		return "P"
	case ModeI:
		return "I"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Image is a decoded picture in PIL's terms: row-major, interleaved samples.
type Image struct {
	Mode          Mode
	Width, Height int
	// Pix holds Width*Height*Mode.Channels() bytes (palette indices for ModeP);
	// nil for ModeI.
	Pix []uint8
	// Pix32 holds Width*Height samples for ModeI only.
	Pix32 []int32
	// Palette maps ModeP indices to RGB; indices past its end read as black, as in PIL.
	Palette [][3]uint8
}

// MaxPixels bounds width*height of a decoded image, as PIL's decompression-bomb check
// does (2 * Image.MAX_IMAGE_PIXELS), so that a forged header cannot exhaust memory.
const MaxPixels = 2 * 89478485

// DecodeFile decodes the image file at path, streaming it from disk. What ReadFile
// refuses is refused here too, before decoding.
func DecodeFile(path string) (*Image, error) {
	img, release, err := decodeFile(path)
	if err != nil {
		return nil, err
	}
	release()
	return img, nil
}

// decodeFile is DecodeFile, returning the release of the decode's memory
// reservation to call once the image is no longer needed.
func decodeFile(path string) (*Image, func(), error) {
	f, fi, err := openImage(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return decodeAt(f, fi.Size(), path, MaxPixels, nil)
}

// Decode reads an encoded image (JPEG, PNG, GIF, BMP, WebP or TIFF) of at most
// MaxFileBytes from r; name identifies it in errors (a path, a parquet row, a tar
// member).
func Decode(r io.Reader, name string) (*Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("images: reading %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("images: %s: more than the %d-byte limit for an image file", name, MaxFileBytes)
	}
	return DecodeBytes(data, name)
}

// DecodeBytes decodes an encoded image held in data; name identifies it in errors.
// data is not retained.
func DecodeBytes(data []byte, name string) (*Image, error) {
	return decodeLimit(data, name, MaxPixels)
}

func decodeLimit(data []byte, name string, maxPixels int) (*Image, error) {
	img, release, err := decodeAt(bytes.NewReader(data), int64(len(data)), name, maxPixels, data)
	if err != nil {
		return nil, err
	}
	release()
	return img, nil
}

// decodeAt decodes the size encoded bytes of r, which are data when the caller holds
// them in memory (nil when r streams them from a file), after checking the header: at most maxPixels pixels, and a decode cost
// (decodeCost) within MaxDecodeBytes, reserved from the process's decodeBudget
// until the returned release is called.
func decodeAt(r io.ReaderAt, size int64, name string, maxPixels int, data []byte) (*Image, func(), error) {
	cfg, format, err := image.DecodeConfig(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, nil, decodeError(name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxPixels/cfg.Height {
		return nil, nil, fmt.Errorf("images: %s: %s image of %dx%d pixels is empty or over the limit of %d pixels", name, format, cfg.Width, cfg.Height, maxPixels)
	}
	// libjpeg decodes from memory: a file is read whole first.
	cost := decodeCost(cfg, format, r, size, data != nil || format == "jpeg" && libjpeg)
	if cost > MaxDecodeBytes {
		return nil, nil, fmt.Errorf("images: %s: decoding this %dx%d %s image would take about %d MiB, more than the %d MiB all decodes may hold at once",
			name, cfg.Width, cfg.Height, format, cost>>20, MaxDecodeBytes>>20)
	}
	decodeBudget.acquire(cost)
	release := sync.OnceFunc(func() { decodeBudget.release(cost) })
	if format == "jpeg" && libjpeg {
		img, ok, err := decodeJPEGAt(r, size, cfg, data)
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("images: %s: %w", name, err)
		}
		if ok {
			return img, release, nil
		}
	}
	m, err := safeDecode(io.NewSectionReader(r, 0, size))
	if err != nil {
		release()
		return nil, nil, decodeError(name, err)
	}
	var head [32]byte // the PNG header fields fromImage reads
	n, _ := r.ReadAt(head[:], 0)
	img, err := fromImage(m, format, head[:n])
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("images: %s: %w", name, err)
	}
	return img, release, nil
}

// safeDecode runs the registered decoders, which are third-party code fed untrusted
// bytes: a panic in one becomes an error naming the file instead of killing a batch.
func safeDecode(r io.Reader) (m image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("decoder failed: %v", r)
		}
	}()
	m, _, err = image.Decode(r)
	return m, err
}

func decodeError(name string, err error) error {
	if errors.Is(err, image.ErrFormat) {
		return fmt.Errorf("images: %s: not a JPEG, PNG, GIF, BMP, WebP or TIFF image", name)
	}
	return fmt.Errorf("images: %s: %w", name, err)
}

// FromImage converts a decoded Go image to PIL's representation, choosing the mode PIL
// would give the same pixels: Gray -> L, YCbCr and opaque RGBA -> RGB, NRGBA -> RGBA,
// CMYK -> CMYK, Paletted -> P (L when the palette is the identity grey ramp), Gray16 -> I.
// 16-bit colour keeps the high byte of each sample, as PIL's ";16B" unpackers do.
func FromImage(m image.Image) (*Image, error) {
	return fromImage(m, "", nil)
}

// fromImage converts m; format and the first bytes of the encoded file refine the
// mode where Go's image type alone cannot tell what PIL would open (PNG colour
// types, BMP palettes).
func fromImage(m image.Image, format string, data []byte) (*Image, error) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("empty %dx%d image", w, h)
	}
	img := &Image{Width: w, Height: h}
	pngType := -1
	if format == "png" && len(data) >= 26 {
		pngType = int(data[25]) // IHDR colour type: 0 L, 2 RGB, 3 P, 4 LA, 6 RGBA
	}
	switch m := m.(type) {
	case *image.Gray:
		img.Mode = ModeL
		img.Pix = make([]uint8, w*h)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		if pngType == 0 && data[24] == 1 {
			// PIL opens 1-bit grey PNGs as mode 1 and resizes them with nearest
			// neighbour; a two-entry black/white palette behaves the same.
			img.Mode = ModeP
			img.Palette = [][3]uint8{{0, 0, 0}, {255, 255, 255}}
			for i, v := range img.Pix {
				img.Pix[i] = v >> 7
			}
		}
	case *image.Gray16:
		img.Mode = ModeI
		img.Pix32 = make([]int32, w*h)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				img.Pix32[y*w+x] = int32(row[2*x])<<8 | int32(row[2*x+1])
			}
		}
	case *image.YCbCr:
		img.Mode = ModeRGB
		img.Pix = make([]uint8, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				p := img.Pix[(y*w+x)*3:]
				p[0], p[1], p[2] = r, g, bb
			}
		}
	case *image.CMYK:
		img.Mode = ModeCMYK
		img.Pix = make([]uint8, w*h*4)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*w*4:(y+1)*w*4], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.Paletted:
		img.Mode = ModeP
		img.Pix = make([]uint8, w*h)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		img.Palette = make([][3]uint8, len(m.Palette))
		for i, c := range m.Palette {
			img.Palette[i] = straightRGB(c)
		}
		// PIL's GIF and BMP plugins open a palette that is the identity grey ramp as L
		// (which is then resized with bicubic, not nearest); BMP's two-colour case is
		// mode 1, resized with nearest like P, so it stays P here.
		if (format == "gif" || (format == "bmp" && len(img.Palette) != 2)) && greyRamp(img.Palette) {
			img.Mode = ModeL
			for i, v := range img.Pix {
				if int(v) >= len(img.Palette) {
					img.Pix[i] = 0
				}
			}
			img.Palette = nil
		}
	default:
		// Everything else goes through straight (non-premultiplied) 8-bit RGBA.
		img.Mode = ModeRGBA
		img.Pix = make([]uint8, w*h*4)
		opaque := true
		at := pixelAt(m)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := at(b.Min.X+x, b.Min.Y+y)
				p := img.Pix[(y*w+x)*4:]
				p[0], p[1], p[2], p[3] = c.R, c.G, c.B, c.A
				opaque = opaque && c.A == 0xff
			}
		}
		switch {
		case pngType == 0 || pngType == 2:
			// Grey or RGB PNG with a tRNS colour key: PIL keeps mode L/RGB and
			// ignores the key when converting, so the alpha Go derived is dropped.
			img.Mode = ModeRGB
		case pngType == 4 || pngType == 6:
			// PIL opens LA and RGBA PNGs with alpha even when every pixel is opaque.
		case opaque:
			img.Mode = ModeRGB
		}
		if img.Mode == ModeRGB {
			img.Pix = dropAlpha(img.Pix)
		}
	}
	return img, nil
}

// pixelAt returns straightRGBA of m's pixels, reading the common 8- and 16-bit
// types directly: m.At boxes every pixel in an interface, an allocation each.
func pixelAt(m image.Image) func(x, y int) color.NRGBA {
	switch m := m.(type) {
	case *image.NRGBA:
		return m.NRGBAAt
	case *image.RGBA:
		return func(x, y int) color.NRGBA { return straightRGBA8(m.RGBAAt(x, y)) }
	case *image.NRGBA64:
		return func(x, y int) color.NRGBA { return straightNRGBA64(m.NRGBA64At(x, y)) }
	case *image.RGBA64:
		return func(x, y int) color.NRGBA { return straightRGBA64(m.RGBA64At(x, y)) }
	}
	return func(x, y int) color.NRGBA { return straightRGBA(m.At(x, y)) }
}

// straightRGBA returns c as 8-bit non-premultiplied RGBA. NRGBA colours keep their
// stored channels (Go's premultiplied RGBA() would lose them where alpha is small);
// 16-bit colours keep their high byte.
func straightRGBA(c color.Color) color.NRGBA {
	switch c := c.(type) {
	case color.NRGBA:
		return c
	case color.NRGBA64:
		return straightNRGBA64(c)
	case color.RGBA:
		return straightRGBA8(c)
	case color.RGBA64:
		return straightRGBA64(c)
	case color.Gray:
		return color.NRGBA{c.Y, c.Y, c.Y, 0xff}
	case color.Gray16:
		v := uint8(c.Y >> 8)
		return color.NRGBA{v, v, v, 0xff}
	case color.NYCbCrA:
		r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
		return color.NRGBA{r, g, b, c.A}
	case color.YCbCr:
		r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
		return color.NRGBA{r, g, b, 0xff}
	}
	r, g, b, a := c.RGBA()
	if a == 0xffff {
		return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
	}
	return unpremultiply(r>>8, g>>8, b>>8, a>>8)
}

func straightNRGBA64(c color.NRGBA64) color.NRGBA {
	return color.NRGBA{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8), uint8(c.A >> 8)}
}

func straightRGBA8(c color.RGBA) color.NRGBA {
	if c.A == 0xff {
		return color.NRGBA{c.R, c.G, c.B, 0xff}
	}
	return unpremultiply(uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A))
}

func straightRGBA64(c color.RGBA64) color.NRGBA {
	if c.A == 0xffff {
		return color.NRGBA{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8), 0xff}
	}
	return unpremultiply(uint32(c.R)>>8, uint32(c.G)>>8, uint32(c.B)>>8, uint32(c.A)>>8)
}

// unpremultiply undoes associated alpha as PIL's RGBa unpacker does.
func unpremultiply(r, g, b, a uint32) color.NRGBA {
	if a == 0 {
		return color.NRGBA{}
	}
	div := func(v uint32) uint8 { return uint8(min(v*255/a, 255)) }
	return color.NRGBA{div(r), div(g), div(b), uint8(a)}
}

// straightRGB returns the RGB that PIL's palette holds for a palette entry: the stored
// channels, ignoring any transparency.
func straightRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.RGBA:
		if c.A == 0xff || c.A == 0 {
			// Go's GIF decoder blanks the transparent entry to RGBA{}; PIL would
			// show the stored colour, which Go does not keep.
			return [3]uint8{c.R, c.G, c.B}
		}
	}
	n := straightRGBA(c)
	return [3]uint8{n.R, n.G, n.B}
}

// greyRamp reports whether entry i of p is (i, i, i) for every i.
func greyRamp(p [][3]uint8) bool {
	if len(p) == 0 {
		return false
	}
	for i, c := range p {
		if int(c[0]) != i || int(c[1]) != i || int(c[2]) != i {
			return false
		}
	}
	return true
}

func dropAlpha(rgba []uint8) []uint8 {
	n := len(rgba) / 4
	rgb := make([]uint8, n*3)
	for i := 0; i < n; i++ {
		copy(rgb[i*3:i*3+3], rgba[i*4:i*4+3])
	}
	return rgb
}
