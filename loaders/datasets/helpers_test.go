package datasets

import (
	"archive/tar"
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// solid returns a 4x4 image of one colour; tests tell items apart by it.
func solid(v uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = v, 255-v, v/2, 255
	}
	return img
}

func pngBytes(t testing.TB, v uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, solid(v)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, v uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, solid(v), &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeFile writes data to dir/rel, creating folders.
func writeFile(t testing.TB, dir, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tarBytes builds a tar of name, data pairs.
func tarBytes(t testing.TB, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for i := 0; i < len(members); i += 2 {
		data := []byte(members[i+1])
		if err := w.WriteHeader(&tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// redOf decodes an item and returns the red value of its top-left pixel.
func redOf(t testing.TB, it Item) uint8 {
	t.Helper()
	img, err := it.Decode()
	if err != nil {
		t.Fatal(err)
	}
	r, _, _, _ := img.At(img.Bounds().Min.X, img.Bounds().Min.Y).RGBA()
	return uint8(r >> 8)
}

// near reports whether two 8-bit values differ by at most 2 (JPEG rounding).
func near(a, b uint8) bool {
	d := int(a) - int(b)
	return -2 <= d && d <= 2
}

// wantErr checks that err is non-nil and mentions every substring.
func wantErr(t testing.TB, test int, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("test %d: got no error, want one mentioning %q", test, subs)
	}
	if !strings.HasPrefix(err.Error(), "loaders: datasets: ") {
		t.Errorf("test %d: error %q lacks the package prefix", test, err)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("test %d: error %q does not mention %q", test, err, s)
		}
	}
}

// readAll reads every item of ds from several goroutines at once (the race
// detector checks Item's concurrency safety) and returns them in order.
func readAll(t testing.TB, ds Dataset) []Item {
	t.Helper()
	items := make([]Item, ds.Len())
	errs := make([]error, ds.Len())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < ds.Len(); i += 4 {
				items[i], errs[i] = ds.Item(i)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if items[i].Index != i {
			t.Fatalf("item %d: got Index %d", i, items[i].Index)
		}
	}
	return items
}
