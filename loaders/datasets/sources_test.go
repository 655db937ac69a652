package datasets

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestSources: every kind names the files an item is read from, and a subset names
// those of the items it keeps.
func TestSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := writeFile(t, dir, "folder/val/cat/a.png", pngBytes(t, 1))
	writeFile(t, dir, "folder/val/dog/b.png", pngBytes(t, 2))
	imgB := filepath.Join(dir, "folder", "val", "dog", "b.png")
	tarA := writeFile(t, dir, "wds/test/0.tar", tarBytes(t, "a.png", string(pngBytes(t, 1)), "a.cls", "0"))
	tarB := writeFile(t, dir, "wds/test/1.tar", tarBytes(t, "b.png", string(pngBytes(t, 2)), "b.cls", "1"))
	writeFile(t, dir, "wds/classnames.txt", []byte("x\ny\n"))
	imgs := writeFile(t, dir, "idx/t10k-images-idx3-ubyte", idxBytes(t, false, make([]byte, 2*4), 2, 2, 2))
	lbls := writeFile(t, dir, "idx/t10k-labels-idx1-ubyte", idxBytes(t, false, []byte{0, 1}, 2))
	cifar := cifar10Tree(t, "", true)
	pq := writeParquet(t, dir, "pq/test.parquet", hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel("a", "b", "c")}), hfRows(t, 0, 0, 1))
	for i, test := range []struct {
		spec string
		opts Options
		want [][]string
	}{
		{"imagefolder:" + filepath.Join(dir, "folder"), Options{}, [][]string{{img}, {imgB}}},
		{"imagefolder:" + filepath.Join(dir, "folder"), Options{Limit: 1, Seed: 1}, nil}, // checked below
		{"wds:" + filepath.Join(dir, "wds"), Options{}, [][]string{{tarA}, {tarB}}},
		{"mnist:" + filepath.Join(dir, "idx"), Options{}, [][]string{{imgs, lbls}, {imgs, lbls}}},
		{"cifar10:" + cifar, Options{}, [][]string{{filepath.Join(cifar, "test_batch.bin")}}},
		{"parquet:" + pq, Options{}, [][]string{{pq}, {pq}}},
	} {
		ds, err := Open(test.spec, "test", test.opts)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		src, ok := ds.(Sourcer)
		if !ok {
			t.Fatalf("test %d: %T does not implement Sourcer", i, ds)
		}
		if test.want == nil { // a subset: each item's source is its own file
			for j := 0; j < ds.Len(); j++ {
				it, err := ds.Item(j)
				if err != nil {
					t.Fatal(err)
				}
				if got := src.Sources(j); !slices.Equal(got, []string{it.Name}) {
					t.Errorf("test %d: item %d: got %q want [%s]", i, j, got, it.Name)
				}
			}
			continue
		}
		if ds.Len() < len(test.want) {
			t.Fatalf("test %d: %d items, want at least %d", i, ds.Len(), len(test.want))
		}
		for j, want := range test.want {
			if got := src.Sources(j); !slices.Equal(got, want) {
				t.Errorf("test %d: item %d: got %q want %q", i, j, got, want)
			}
		}
	}
}
