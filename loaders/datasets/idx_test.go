package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"slices"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// idxBytes encodes an unsigned-byte idx array, gzipped when gz is set.
func idxBytes(t testing.TB, gz bool, data []byte, shape ...int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(shape))})
	for _, d := range shape {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b.Bytes())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

func TestIdx(t *testing.T) {
	t.Parallel()
	// Three 2x3 images whose pixels count up from 10*i; labels 9, 0, 4.
	var pix []byte
	for i := 0; i < 3; i++ {
		for p := 0; p < 6; p++ {
			pix = append(pix, byte(10*i+p))
		}
	}
	for i, test := range []struct {
		spec, imagesName, labelsName string
		gz                           bool
		split                        string
		wantClass                    string
	}{
		{"fashion-mnist", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", true, "test", "Ankle boot"},
		{"mnist", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", false, "test", "9"},
		{"mnist", "train-images.idx3-ubyte", "train-labels.idx1-ubyte", false, "train", "9"},
	} {
		dir := t.TempDir()
		writeFile(t, dir, test.imagesName, idxBytes(t, test.gz, pix, 3, 2, 3))
		writeFile(t, dir, test.labelsName, idxBytes(t, test.gz, []byte{9, 0, 4}, 3))
		ds, err := Open(test.spec+":"+dir, test.split, Options{})
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		items := readAll(t, ds)
		if len(items) != 3 || ds.ClassNames()[items[0].Label] != test.wantClass {
			t.Fatalf("test %d: got %d items, first class %q, want 3 and %q", i, len(items), ds.ClassNames()[items[0].Label], test.wantClass)
		}
		for j, it := range items {
			g, ok := it.Image.(*image.Gray)
			if !ok || g.Bounds() != image.Rect(0, 0, 3, 2) {
				t.Fatalf("test %d item %d: got %T, want a 3x2 *image.Gray", i, j, it.Image)
			}
			if want := pix[6*j : 6*j+6]; !slices.Equal(g.Pix, want) {
				t.Errorf("test %d item %d: got pixels %v want %v", i, j, g.Pix, want)
			}
			if want := []int{9, 0, 4}[j]; it.Label != want {
				t.Errorf("test %d item %d: got label %d want %d", i, j, it.Label, want)
			}
		}
		// Items own their pixels.
		items[0].Image.(*image.Gray).Pix[0] = 255
		again, _ := ds.Item(0)
		if again.Image.(*image.Gray).Pix[0] != 0 {
			t.Errorf("test %d: an item's pixels alias the dataset's", i)
		}
	}
}

func TestIdxErrors(t *testing.T) {
	t.Parallel()
	img := idxBytes(t, false, make([]byte, 12), 3, 2, 2)
	for i, test := range []struct {
		spec   string
		images []byte // nil: no file
		labels []byte
		split  string
		want   []string
	}{
		{"mnist", img, idxBytes(t, true, []byte{1, 2}, 2), "test", []string{"t10k-labels-idx1-ubyte", "2 labels", "3 images"}},
		{"mnist", img, idxBytes(t, false, []byte{1, 2, 10}, 3), "test", []string{"t10k-labels-idx1-ubyte[item 2]", "label 10 out of range"}},
		{"mnist", nil, idxBytes(t, false, []byte{1, 2, 3}, 3), "test", []string{"no images file", "t10k-images-idx3-ubyte.gz"}},
		{"mnist", img, nil, "test", []string{"no labels file"}},
		{"mnist", img[:20], idxBytes(t, false, []byte{1, 2, 3}, 3), "test", []string{"t10k-images-idx3-ubyte", "needs 12 bytes"}},
		{"fashion-mnist", img, idxBytes(t, false, []byte{1, 2, 3}, 3), "val", []string{"no validation split"}},
	} {
		dir := t.TempDir()
		if test.images != nil {
			writeFile(t, dir, "t10k-images-idx3-ubyte", test.images)
		}
		if test.labels != nil {
			writeFile(t, dir, "t10k-labels-idx1-ubyte", test.labels)
		}
		_, err := Open(test.spec+":"+dir, test.split, Options{})
		wantErr(t, i, err, test.want...)
	}
}

// The real Fashion-MNIST test split (Debian's dataset-fashion-mnist).
func TestFashionMNIST(t *testing.T) {
	t.Parallel()
	dir := testfix.FashionMNIST(t)
	ds, err := Open("fashion-mnist:"+dir, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 10000 {
		t.Fatalf("got %d items want 10000", ds.Len())
	}
	counts := make([]int, 10)
	for i := 0; i < ds.Len(); i++ {
		it, err := ds.Item(i)
		if err != nil {
			t.Fatal(err)
		}
		counts[it.Label]++
		if i == 0 {
			if ds.ClassNames()[it.Label] != "Ankle boot" {
				t.Errorf("first item: got class %q want %q", ds.ClassNames()[it.Label], "Ankle boot")
			}
			if b := it.Image.Bounds(); b.Dx() != 28 || b.Dy() != 28 {
				t.Errorf("first item: got %v want 28x28", b)
			}
		}
	}
	// The test split is balanced: 1000 items a class.
	for c, n := range counts {
		if n != 1000 {
			t.Errorf("class %d: got %d items want 1000", c, n)
		}
	}
	if testing.Short() {
		return
	}
	// The train split (60000 images) is slow to read under the race detector.
	limited, err := Open("fashion-mnist:"+dir, "train", Options{Limit: 100, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if limited.Len() != 100 {
		t.Errorf("limited train: got %d items want 100", limited.Len())
	}
}
