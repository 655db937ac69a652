package experiments

import (
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/featcache"
)

// meanEncoder is a stand-in model: each image's feature is the mean of each channel,
// so features can be checked without weights, and calls are counted.
type meanEncoder struct {
	res   int
	calls atomic.Int32
}

func (e *meanEncoder) EncodeImages(pixels []float32, n int) ([]float32, error) {
	e.calls.Add(1)
	per := e.res * e.res
	out := make([]float32, n*3)
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			var s float32
			for _, v := range pixels[(i*3+c)*per : (i*3+c+1)*per] {
				s += v
			}
			out[i*3+c] = s / float32(per)
		}
	}
	return out, nil
}

// writeFolder writes an image folder with n PNGs per class in val/, each a flat colour
// that encodes its class, plus the given extra files.
func writeFolder(t *testing.T, n int, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for c, class := range []string{"dark", "light"} {
		for i := 0; i < n; i++ {
			p := filepath.Join(root, "val", class, string(rune('a'+i))+".png")
			os.MkdirAll(filepath.Dir(p), 0o755)
			img := image.NewGray(image.Rect(0, 0, 20, 12))
			for j := range img.Pix {
				img.Pix[j] = uint8(40 + 170*c)
			}
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for name, content := range extra {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	return root
}

// TestImageFeaturesPipeline runs the decode/preprocess workers and the model
// concurrently (run it under -race) with a partial last batch, a bad image skipped
// and listed, and the cache then serving a second run without the model.
func TestImageFeaturesPipeline(t *testing.T) {
	root := writeFolder(t, 9, map[string]string{"val/light/zz-broken.png": "not a png"})
	ds, err := datasets.Open("imagefolder:"+root, "test", datasets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc := &meanEncoder{res: 16}
	x := Extraction{Resolution: 16, Dim: 3, BatchSize: 4, Workers: 3, SkipBad: true, CacheDir: t.TempDir(),
		ModelID: "mean", DatasetSpec: "folder", Split: "test"}
	f, err := ImageFeatures(enc, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	if f.N != 18 || len(f.Skipped) != 1 || !strings.Contains(f.Skipped[0], "zz-broken.png") {
		t.Fatalf("got %d rows, skipped %q; want 18 and the broken file", f.N, f.Skipped)
	}
	for r := 0; r < f.N; r++ {
		dark := f.X[r*3] < 0 // normalised: grey 40 is below CLIP's mean, grey 210 above
		if want := f.Y[r] == 0; dark != want {
			t.Errorf("row %d (item %d, label %d): feature %v", r, f.Index[r], f.Y[r], f.X[r*3:r*3+3])
		}
	}
	calls := enc.calls.Load()
	g, err := ImageFeatures(enc, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	if enc.calls.Load() != calls || g.N != f.N || len(g.Skipped) != 1 {
		t.Fatalf("second run: %d more model calls, %d rows, %d skipped; want 0, %d, 1", enc.calls.Load()-calls, g.N, len(g.Skipped), f.N)
	}
	// Without --skip-bad the broken file fails the run, named.
	x.SkipBad, x.CacheDir = false, ""
	if _, err := ImageFeatures(enc, ds, x); err == nil || !strings.Contains(err.Error(), "zz-broken.png") {
		t.Fatalf("without SkipBad: got %v", err)
	}
}

type nanEncoder struct{ meanEncoder }

func (e *nanEncoder) EncodeImages(pixels []float32, n int) ([]float32, error) {
	out, _ := e.meanEncoder.EncodeImages(pixels, n)
	out[len(out)-1] = float32(math.NaN())
	return out, nil
}

// TestImageFeaturesNaN: a non-finite feature is reported with the image it came from.
func TestImageFeaturesNaN(t *testing.T) {
	root := writeFolder(t, 2, nil)
	ds, err := datasets.Open("imagefolder:"+root, "test", datasets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc := &nanEncoder{meanEncoder{res: 16}}
	_, err = ImageFeatures(enc, ds, Extraction{Resolution: 16, Dim: 3, BatchSize: 4})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("val", "light", "b.png")) {
		t.Fatalf("got %v, want an error naming val/light/b.png", err)
	}
	if !errors.Is(err, featcache.ErrNonFinite) {
		t.Errorf("error %v does not wrap featcache.ErrNonFinite", err)
	}
}
