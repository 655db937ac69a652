package images

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
)

// MaxFileBytes bounds the size of an encoded image file. Photographs are a few MB;
// the largest image MaxPixels allows compresses to far less than this in any format
// but uncompressed TIFF or BMP.
const MaxFileBytes = 256 << 20

// MaxDecodeBytes bounds the memory all decodes in the process hold at once: each
// decode reserves what its format, colour model and size will need (decodeCost)
// before it allocates, and waits while other decodes hold the rest, so that more
// workers mean more waiting, not more memory. An image needing more than this
// alone is refused, naming what it would need.
const MaxDecodeBytes = 1 << 30

// bigDecode is the reservation above which releasing it also collects the garbage
// the decode left, so that the next large decode starts from a collected heap
// instead of stacking on top of the last one until the collector catches up.
const bigDecode = 128 << 20

// decodeBudget is shared by every decode of the process.
var decodeBudget = newBudget(MaxDecodeBytes)

// budget is a first-come, first-served weighted semaphore.
type budget struct {
	mu         sync.Mutex
	size, used int64
	waiters    list.List // of *budgetWaiter, oldest first
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(size int64) *budget { return &budget{size: size} }

// acquire blocks until n bytes (at most size) are free and takes them, after every
// earlier waiter; release gives them back.
func (b *budget) acquire(n int64) {
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters.PushBack(w)
	b.mu.Unlock()
	<-w.ready
}

// waiting returns the number of requests waiting.
func (b *budget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.size {
			break
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
	b.mu.Unlock()
	if n >= bigDecode {
		runtime.GC()
	}
}

// ReadFile reads the image file at path for decoding from memory: only a regular
// file (a FIFO would block, a device never end), of at most MaxFileBytes, whose
// first bytes are those of a format the decoders know; anything else is refused,
// naming the file, before it is read whole.
func ReadFile(path string) ([]byte, error) {
	f, fi, err := openImage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, fi.Size())
	if n, err := f.ReadAt(b, 0); err != nil && n != len(b) {
		return nil, fmt.Errorf("images: reading %s: %w", path, err)
	}
	return b, nil
}

// openImage opens the image file at path after the checks ReadFile describes.
func openImage(path string) (*os.File, os.FileInfo, error) {
	f, fi, err := regfile.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("images: %w", err)
	}
	if fi.Size() > MaxFileBytes {
		f.Close()
		return nil, nil, fmt.Errorf("images: %s: %d bytes, more than the %d-byte limit for an image file", path, fi.Size(), MaxFileBytes)
	}
	var head [16]byte
	n, _ := f.ReadAt(head[:], 0)
	if knownFormat(head[:n]) == "" {
		f.Close()
		return nil, nil, fmt.Errorf("images: %s: not a JPEG, PNG, GIF, BMP, WebP or TIFF image", path)
	}
	return f, fi, nil
}

// knownFormat names the format whose magic bytes head starts with, or "".
func knownFormat(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\xff\xd8")):
		return "jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(head, []byte("GIF8")):
		return "gif"
	case bytes.HasPrefix(head, []byte("BM")):
		return "bmp"
	case len(head) >= 12 && bytes.HasPrefix(head, []byte("RIFF")) && string(head[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return "tiff"
	}
	return ""
}

// decodeCost estimates the bytes decoding an image of cfg in format holds at its
// peak: the decoder's image (and, for progressive JPEG, its DCT coefficients at
// 4 bytes a sample; for interlaced PNG, the passes), plus the Image fromImage builds
// (an RGBA pass, then RGB, for the models that go through RGBA). r reads the encoded
// file of size bytes, for the few header fields that change the answer; inMemory
// says whether those bytes are held during the decode (TIFF's decoder buffers them
// itself).
func decodeCost(cfg image.Config, format string, r io.ReaderAt, size int64, inMemory bool) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	var decoder, ours int64 // bytes per pixel
	switch cfg.ColorModel {
	case color.GrayModel:
		decoder, ours = 1, 1
	case color.Gray16Model:
		decoder, ours = 2, 4
	case color.YCbCrModel:
		decoder, ours = 3, 3
	case color.CMYKModel:
		decoder, ours = 8, 4 // JPEG decodes CMYK through YCbCr plus K
	case color.RGBAModel, color.NRGBAModel, color.NYCbCrAModel:
		decoder, ours = 4, 7
	default: // 16-bit colour, and palettes
		if _, ok := cfg.ColorModel.(color.Palette); ok {
			decoder, ours = 1, 1
		} else {
			decoder, ours = 8, 7
		}
	}
	switch format {
	case "jpeg":
		if c := jpegProgressive(r, size); c > 0 {
			decoder += 4 * int64(c)
		}
	case "png":
		var ihdr [1]byte
		if _, err := r.ReadAt(ihdr[:], 28); err == nil && ihdr[0] == 1 { // Adam7
			decoder *= 2
		}
	case "webp":
		decoder = max(decoder, 8) // VP8L holds a uint32 per pixel besides the image
	}
	cost := px * (decoder + ours)
	if inMemory {
		cost += size
	}
	if format == "tiff" {
		cost += 3 * size // the decoder reads a stream whole into a buffer grown by doubling
	}
	return cost + 1<<20 // rows, tables and the like
}

// jpegProgressive returns the number of components of a progressive JPEG (whose
// decoder keeps every DCT coefficient of the image), or 0 for a baseline one or
// when the frame header cannot be found. It walks the marker segments from the
// start of r up to the first start-of-frame.
func jpegProgressive(r io.ReaderAt, size int64) int {
	var seg [10]byte
	for off := int64(2); off+4 <= size; {
		if _, err := r.ReadAt(seg[:4], off); err != nil || seg[0] != 0xff {
			return 0
		}
		marker := seg[1]
		switch {
		case marker == 0xff: // fill byte
			off++
			continue
		case marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01:
			off += 2 // no length
			continue
		case marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc:
			if marker != 0xc2 && marker != 0xc6 && marker != 0xca && marker != 0xce {
				return 0
			}
			if _, err := r.ReadAt(seg[:10], off); err != nil {
				return 0
			}
			return int(seg[9])
		case marker == 0xda || marker == 0xd9:
			return 0 // scan data or end before any frame
		}
		off += 2 + int64(binary.BigEndian.Uint16(seg[2:4]))
	}
	return 0
}
