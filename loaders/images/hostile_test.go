package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/bomb"
	"github.com/gorgoclip/gorgoclip/internal/hang"
	"github.com/gorgoclip/gorgoclip/internal/memlimit"
)

// bombPNG returns a PNG of w x h zero pixels of the given colour type and bit depth
// whose IDAT inflates to every row: a few MB, however large the image.
func bombPNG(w, h int, colorType, depth byte) []byte {
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colorType]
	rowBytes := 1 + int64(w)*int64(channels)*int64(depth)/8
	out := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(kind string, data []byte) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(append(out, kind...), data...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(w)), uint32(h))
	chunk("IHDR", append(ihdr, depth, colorType, 0, 0, 0))
	chunk("IDAT", bomb.Zlib(nil, rowBytes*int64(h), nil))
	chunk("IEND", nil)
	return out
}

// TestHostileFiles checks that every way in from a path refuses what is not an
// image file, by name and at once: a FIFO named x.jpg (which blocked the run even
// with --skip-bad), a symlink to /dev/zero (which read until memory ran out), a
// directory, a 3 GB file that is no image and a 300 MB one that claims to be a JPEG
// (both read whole before).
func TestHostileFiles(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "x.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here: ", err)
	}
	zero := filepath.Join(dir, "zero.png")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.png")
	os.Mkdir(sub, 0o755)
	sparse := func(name string, head []byte, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, head, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	huge := sparse("huge.jpg", []byte("not an image at all"), 3<<30)
	fake := sparse("fake.jpg", []byte("\xff\xd8\xff\xe0"), 300<<20)
	notImage := sparse("text.png", []byte("hello\n"), 6)
	for i, test := range []struct {
		path, want string
	}{
		{fifo, "x.jpg is not a regular file (a FIFO)"},
		{zero, "zero.png is not a regular file (a character device)"},
		{sub, "dir.png is not a regular file (a directory)"},
		{huge, "huge.jpg: 3221225472 bytes, more than the 268435456-byte limit"},
		{fake, "fake.jpg: 314572800 bytes, more than the 268435456-byte limit"},
		{notImage, "text.png: not a JPEG, PNG, GIF, BMP, WebP or TIFF image"},
	} {
		for j, read := range []func(string) error{
			func(p string) error { _, err := ReadFile(p); return err },
			func(p string) error { _, err := DecodeFile(p); return err },
			func(p string) error { return PreprocessFile(p, 8, make([]float32, 3*8*8)) },
			func(p string) error { _, err := PreprocessFiles([]string{p}, 8, 1); return err },
		} {
			err := hang.Within(t, 10*time.Second, test.path, func() error { return read(test.path) })
			if err == nil || !strings.Contains(err.Error(), test.want) {
				t.Errorf("test %d, reader %d: got %v want %q", i, j, err, test.want)
			}
		}
	}
}

// TestLargeSixteenBitImages: 16-bit RGBA PNGs just under the pixel limit took
// 3.6 GB each to decode, several at once with several workers; their cost is now
// refused from the header, naming what they would take.
func TestLargeSixteenBitImages(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"a.png", "b.png"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bombPNG(13000, 13000, 6, 16), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	_, err := PreprocessFiles(paths, 224, 2)
	for _, p := range paths {
		want := p + ": decoding this 13000x13000 png image would take about 2418 MiB, more than the 1024 MiB"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// TestDecodeCostBoundsAllocation checks decodeCost against what decoding allocates
// (all of it, garbage included, so at least the peak): the reservation must cover
// it, or the budget would not bound memory.
func TestDecodeCostBoundsAllocation(t *testing.T) {
	rect := image.Rect(0, 0, 600, 400)
	gray16 := image.NewGray16(rect)
	rgba64 := image.NewNRGBA64(rect)
	rgba := image.NewNRGBA(rect)
	pal := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.Gray{128}})
	for y := 0; y < 400; y++ {
		for x := 0; x < 600; x++ {
			v := uint16(x*97 + y*31)
			gray16.SetGray16(x, y, color.Gray16{v})
			rgba64.SetNRGBA64(x, y, color.NRGBA64{v, v / 2, v / 3, 0xffff - v})
			rgba.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 200})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	progressive, err := os.ReadFile("testdata/progressive.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{
		encode(t, gray16, encPNG), encode(t, rgba64, encPNG), encode(t, rgba, encPNG),
		encode(t, rgba, encJPEG), progressive, encode(t, pal, encGIF), encode(t, rgba, encBMP),
		encode(t, rgba64, encTIFF), encode(t, gray16, encTIFF),
	} {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		cost := decodeCost(cfg, format, bytes.NewReader(data), int64(len(data)), true)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := DecodeBytes(data, "x"); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(cost) {
			t.Errorf("test %d (%s, %T): decoding allocated %d bytes, decodeCost reserves %d", i, format, cfg.ColorModel, alloc, cost)
		}
	}
	if c := jpegProgressive(bytes.NewReader(progressive), int64(len(progressive))); c != 3 {
		t.Errorf("progressive.jpg: got %d components want 3", c)
	}
	if c := jpegProgressive(bytes.NewReader(encode(t, rgba, encJPEG)), 1<<20); c != 0 {
		t.Errorf("baseline JPEG: got %d components want 0", c)
	}
}

// TestDecodeBudget checks the semaphore the decodes share: a request waits while
// others hold the budget, and requests are served in order, so a large one is not
// starved by small ones arriving after it.
func TestDecodeBudget(t *testing.T) {
	b := newBudget(10)
	b.acquire(6)
	got := make(chan string, 2)
	go func() { b.acquire(6); got <- "large" }()
	for b.waiting() != 1 {
		runtime.Gosched()
	}
	go func() { b.acquire(1); got <- "small" }()
	for b.waiting() != 2 {
		runtime.Gosched()
	}
	select {
	case s := <-got:
		t.Fatalf("%s request served while 6 of 10 were held", s)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(6) // now both fit: the small one had waited behind the large one
	<-got
	<-got
	if b.used != 7 {
		t.Fatalf("used %d want 7", b.used)
	}
}

// TestPreprocessFilesSkipsFIFO: one bad file among good ones fails alone, by name.
func TestPreprocessFilesSkipsFIFO(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	if err := os.WriteFile(good, encode(t, image.NewGray(image.Rect(0, 0, 4, 4)), encPNG), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "x.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here: ", err)
	}
	err := hang.Within(t, 10*time.Second, "PreprocessFiles", func() error {
		_, err := PreprocessFiles([]string{good, fifo, good}, 8, 2)
		return err
	})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 || !strings.Contains(err.Error(), "x.jpg is not a regular file") {
		t.Fatalf("got %v, want one error naming x.jpg", err)
	}
}
