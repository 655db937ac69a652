package images

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// fixtureCase is one entry of fixtures/preprocess/cases.json.
type fixtureCase struct {
	Image  string `json:"image"`
	Size   int    `json:"size"`
	Golden string `json:"golden"`
	Mode   string `json:"mode"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

func loadCases(t testing.TB) (dir string, cases []fixtureCase) {
	t.Helper()
	dir = testfix.Shared(t, "fixtures/preprocess")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases in cases.json")
	}
	return dir, cases
}

// diff returns the largest and the mean absolute difference of got and want.
func diff(got, want []float32) (maxAbs, meanAbs float64) {
	var sum float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		maxAbs = max(maxAbs, d)
		sum += d
	}
	return maxAbs, sum / float64(len(want))
}

// TestPreprocessMatchesOpenAI compares every fixture case with the output of OpenAI's
// _transform(N). PNGs, and JPEGs decoded with libjpeg-turbo as PIL decodes them (the
// libjpeg tag), must be bit-identical; JPEGs decoded by Go's image/jpeg within what it
// allows.
func TestPreprocessMatchesOpenAI(t *testing.T) {
	dir, cases := loadCases(t)
	for i, c := range cases {
		img, err := DecodeFile(filepath.Join(dir, c.Image))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if img.Width != c.Width || img.Height != c.Height {
			t.Errorf("test %d: %s: got %dx%d want %dx%d", i, c.Image, img.Width, img.Height, c.Width, c.Height)
		}
		if img.Mode.String() != c.Mode {
			t.Errorf("test %d: %s: got mode %v want %v", i, c.Image, img.Mode, c.Mode)
		}
		golden, err := npy.ReadFloat32(filepath.Join(dir, c.Golden))
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{3, c.Size, c.Size}; !slices.Equal(golden.Shape, want) {
			t.Fatalf("test %d: golden shape %v want %v", i, golden.Shape, want)
		}
		got := make([]float32, 3*c.Size*c.Size)
		if err := Preprocess(img, c.Size, got); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		maxAbs, meanAbs := diff(got, golden.Data)
		t.Logf("%-45s %3d  max %.5f  mean %.6f", c.Image, c.Size, maxAbs, meanAbs)
		maxTol, meanTol := 0.016, 0.002
		if strings.HasSuffix(c.Image, ".jpg") && !libjpeg {
			maxTol, meanTol = 0.3, 0.008
		} else if maxAbs != 0 {
			// These inputs are decoded as PIL decodes them and go through the same
			// integer arithmetic as Pillow and the same float32 steps as torchvision,
			// so any difference at all is a bug even when it is within the one-level
			// tolerance below.
			t.Errorf("test %d: %s at %d: got max %g want bit-identical output", i, c.Image, c.Size, maxAbs)
		}
		if maxAbs > maxTol || meanAbs > meanTol {
			t.Errorf("test %d: %s at %d: got max %.5f mean %.6f want <= %g, < %g", i, c.Image, c.Size, maxAbs, meanAbs, maxTol, meanTol)
		}
	}
}

// TestPixelsGolden checks the model fixture's input batch: the five preprocess images
// (in cases.json order) after _transform(64).
func TestPixelsGolden(t *testing.T) {
	dir, cases := loadCases(t)
	golden, err := npy.ReadFloat32(testfix.Shared(t, "fixtures/clip-tiny-a/golden/pixels.npy"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range cases {
		p := filepath.Join(dir, c.Image)
		if len(paths) == 0 || paths[len(paths)-1] != p {
			paths = append(paths, p)
		}
	}
	if want := []int{len(paths), 3, 64, 64}; !slices.Equal(golden.Shape, want) {
		t.Fatalf("pixels.npy shape %v want %v", golden.Shape, want)
	}
	got, err := PreprocessFiles(paths, 64, 3)
	if err != nil {
		t.Fatal(err)
	}
	stride := 3 * 64 * 64
	for i, p := range paths {
		maxAbs, meanAbs := diff(got[i*stride:(i+1)*stride], golden.Data[i*stride:(i+1)*stride])
		t.Logf("%-45s max %.5f mean %.6f", filepath.Base(p), maxAbs, meanAbs)
		maxTol, meanTol := 0.016, 0.002
		if strings.HasSuffix(p, ".jpg") && !libjpeg {
			maxTol, meanTol = 0.3, 0.008
		} else if maxAbs != 0 {
			t.Errorf("test %d: %s: got max %g want bit-identical output", i, p, maxAbs)
		}
		if maxAbs > maxTol || meanAbs > meanTol {
			t.Errorf("test %d: %s: got max %.5f mean %.6f want <= %g, < %g", i, p, maxAbs, meanAbs, maxTol, meanTol)
		}
	}
}

// TestPreprocessFilesErrors checks that failures name their files in path order while
// the other slots are still filled, with several workers racing over the batch.
func TestPreprocessFilesErrors(t *testing.T) {
	dir, cases := loadCases(t)
	good := filepath.Join(dir, cases[0].Image)
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.jpg")
	if err := os.WriteFile(bad, []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.png")
	paths := []string{good, bad, good, missing, good, good}
	got, err := PreprocessFiles(paths, 32, 4)
	if err == nil {
		t.Fatal("got nil error")
	}
	msg := err.Error()
	if i, j := strings.Index(msg, bad), strings.Index(msg, missing); i < 0 || j < i {
		t.Errorf("error %q does not name %s then %s", msg, bad, missing)
	}
	want := make([]float32, 3*32*32)
	if err := PreprocessFile(good, 32, want); err != nil {
		t.Fatal(err)
	}
	stride := len(want)
	for i, p := range paths {
		slot := got[i*stride : (i+1)*stride]
		if p == good {
			if m, _ := diff(slot, want); m != 0 {
				t.Errorf("test %d: good slot differs by %g", i, m)
			}
		} else if m, _ := diff(slot, make([]float32, stride)); m != 0 {
			t.Errorf("test %d: failed slot not zero", i)
		}
	}
}

// TestTransformNormalization checks that a model's own normalisation (open_clip's
// preprocess_cfg) is applied, and that the zero value is CLIP's, byte for byte.
func TestTransformNormalization(t *testing.T) {
	img := &Image{Mode: ModeRGB, Width: 2, Height: 2, Pix: []uint8{0, 51, 102, 153, 204, 255, 10, 20, 30, 40, 50, 60}}
	clipPx, zeroPx, ownPx := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	own := Normalization{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.25, 1}}
	if err := Preprocess(img, 2, clipPx); err != nil {
		t.Fatal(err)
	}
	if err := (Transform{Size: 2}).Image(img, zeroPx); err != nil {
		t.Fatal(err)
	}
	if err := (Transform{Size: 2, Norm: own}).Image(img, ownPx); err != nil {
		t.Fatal(err)
	}
	for i := range clipPx {
		c := i / 4
		// Undo CLIP's normalisation to the [0,1] value, then apply the model's.
		v := clipPx[i]*Std[c] + Mean[c]
		if want := (v - own.Mean[c]) / own.Std[c]; math.Abs(float64(ownPx[i]-want)) > 1e-5 || zeroPx[i] != clipPx[i] {
			t.Errorf("value %d: own %v want %v; zero-value transform %v, CLIP's %v", i, ownPx[i], want, zeroPx[i], clipPx[i])
		}
	}
	if !(Normalization{}).IsCLIP() || own.IsCLIP() {
		t.Error("IsCLIP misjudged")
	}
}
