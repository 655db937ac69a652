package datasets

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// imagenetteTree writes a two-class Imagenette-like tree: train has 3+2 images,
// val 1+2, with a non-image file that must be skipped.
func imagenetteTree(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "train/n01440764/a.JPEG", jpegBytes(t, 10))
	writeFile(t, dir, "train/n01440764/b.png", pngBytes(t, 20))
	writeFile(t, dir, "train/n01440764/c.jpg", jpegBytes(t, 30))
	writeFile(t, dir, "train/n01440764/notes.txt", []byte("not an image"))
	writeFile(t, dir, "train/n02102040/d.png", pngBytes(t, 40))
	writeFile(t, dir, "train/n02102040/e.png", pngBytes(t, 50))
	writeFile(t, dir, "val/n01440764/f.png", pngBytes(t, 60))
	writeFile(t, dir, "val/n02102040/g.png", pngBytes(t, 70))
	writeFile(t, dir, "val/n02102040/h.png", pngBytes(t, 80))
	return dir
}

func TestImageFolder(t *testing.T) {
	t.Parallel()
	dir := imagenetteTree(t)
	for i, test := range []struct {
		split      string
		wantName   string
		wantLabels []int
		wantRed    []uint8
	}{
		{"train", "imagefolder/train", []int{0, 0, 0, 1, 1}, []uint8{10, 20, 30, 40, 50}},
		{"test", "imagefolder/test", []int{0, 1, 1}, []uint8{60, 70, 80}}, // test falls back to val/
		{"val", "imagefolder/val", []int{0, 1, 1}, []uint8{60, 70, 80}},
	} {
		ds, err := Open("imagefolder:"+dir, test.split, Options{})
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if ds.Name() != test.wantName {
			t.Errorf("test %d: got name %q want %q", i, ds.Name(), test.wantName)
		}
		if got, want := ds.ClassNames(), []string{"tench", "English springer"}; !slices.Equal(got, want) {
			t.Errorf("test %d: got classes %q want %q", i, got, want)
		}
		items := readAll(t, ds)
		for j, it := range items {
			if it.Label != test.wantLabels[j] {
				t.Errorf("test %d item %d: got label %d want %d", i, j, it.Label, test.wantLabels[j])
			}
			if r := redOf(t, it); !near(r, test.wantRed[j]) {
				t.Errorf("test %d item %d (%s): got red %d want %d", i, j, it.Name, r, test.wantRed[j])
			}
			if it.Encoded == nil || it.Image != nil {
				t.Errorf("test %d item %d: want encoded bytes only", i, j)
			}
		}
		if len(items) != len(test.wantLabels) {
			t.Errorf("test %d: got %d items want %d", i, len(items), len(test.wantLabels))
		}
	}
}

func TestImageFolderClassNames(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		folders    []string
		classnames string // classnames.txt, "" for none
		opts       Options
		want       []string
	}{
		{[]string{"golden_retriever", "tabby_cat"}, "", Options{}, []string{"golden retriever", "tabby cat"}},
		// One folder outside the Imagenette table: folder names for all.
		{[]string{"n01440764", "zebra"}, "", Options{}, []string{"n01440764", "zebra"}},
		{[]string{"b", "a"}, "first\nsecond\n\n", Options{}, []string{"first", "second"}},
		{[]string{"a", "b"}, "first\nsecond\n", Options{ClassNames: []string{"x", "y"}}, []string{"x", "y"}},
	} {
		dir := t.TempDir()
		for _, f := range test.folders {
			writeFile(t, dir, "train/"+f+"/1.png", pngBytes(t, 1))
		}
		if test.classnames != "" {
			writeFile(t, dir, "classnames.txt", []byte(test.classnames))
		}
		ds, err := Open("imagefolder:"+dir, "train", test.opts)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if got := ds.ClassNames(); !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

// A class present in train only keeps later labels aligned in val.
func TestImageFolderSplitsShareLabels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "train/a/1.png", pngBytes(t, 1))
	writeFile(t, dir, "train/b/1.png", pngBytes(t, 2))
	writeFile(t, dir, "train/c/1.png", pngBytes(t, 3))
	writeFile(t, dir, "test/c/1.png", pngBytes(t, 4))
	ds, err := Open("imagefolder:"+dir, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ds.Item(0)
	if err != nil {
		t.Fatal(err)
	}
	if it.Label != 2 || len(ds.ClassNames()) != 3 {
		t.Errorf("got label %d of %d classes, want 2 of 3", it.Label, len(ds.ClassNames()))
	}
}

func TestImageFolderErrors(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		setup func(dir string)
		split string
		opts  Options
		want  []string
	}{
		{func(string) {}, "train", Options{}, []string{"no train folder"}},
		{func(d string) { writeFile(t, d, "train/a/1.png", pngBytes(t, 1)) }, "test", Options{}, []string{"no test folder", "val"}},
		{func(d string) { writeFile(t, d, "train/a/x.txt", nil) }, "train", Options{}, []string{"no image files", "train"}},
		{func(d string) {
			writeFile(t, d, "train/a/1.png", pngBytes(t, 1))
			writeFile(t, d, "classnames.txt", []byte("one\ntwo\n"))
		}, "train", Options{}, []string{"classnames.txt", "2 class names for 1 class folders"}},
		{func(d string) {
			writeFile(t, d, "train/a/1.png", pngBytes(t, 1))
			writeFile(t, d, "train/b/1.png", pngBytes(t, 1))
			writeFile(t, d, "classnames.txt", []byte("one\n\ntwo\n"))
		}, "train", Options{}, []string{"classnames.txt:2", "empty class name"}},
		{func(d string) { writeFile(t, d, "train/a/1.png", pngBytes(t, 1)) }, "train", Options{ClassNames: []string{"x", "y"}}, []string{"2 names", "1 classes"}},
		{func(d string) { writeFile(t, d, "train/a/1.png", pngBytes(t, 1)) }, "dev", Options{}, []string{`unknown split "dev"`}},
		{func(d string) { writeFile(t, d, "train/a/1.png", pngBytes(t, 1)) }, "train", Options{Limit: -1}, []string{"negative limit"}},
	} {
		dir := t.TempDir()
		test.setup(dir)
		_, err := Open("imagefolder:"+dir, test.split, test.opts)
		wantErr(t, i, err, test.want...)
	}
}

func TestOpenSpecErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	for i, test := range []struct {
		spec string
		want []string
	}{
		{"imagefolder", []string{"want KIND:PATH"}},
		{"imagefolder:", []string{"want KIND:PATH"}},
		{"imagefolder:" + missing, []string{missing, "no such file"}},
		{"mnist:" + missing, []string{missing}},
		{"zip:" + t.TempDir(), []string{`unknown kind "zip"`}},
	} {
		_, err := Open(test.spec, "train", Options{})
		wantErr(t, i, err, test.want...)
	}
}

func TestDecodeErrorNamesItem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "train/a/broken.jpg", []byte("\xff\xd8not a jpeg")) // a JPEG magic, then garbage
	ds, err := Open("imagefolder:"+dir, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ds.Item(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = it.Decode()
	wantErr(t, 0, err, "decode", bad)
	for i, idx := range []int{-1, 1} {
		_, err := ds.Item(idx)
		wantErr(t, i+1, err, "out of range")
	}
	_, err = Item{Name: "empty"}.Decode()
	wantErr(t, 3, err, "empty", "no image data")
}

func TestLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		class := "a"
		if i%4 == 0 {
			class = "b"
		}
		writeFile(t, dir, "train/"+class+"/"+string(rune('a'+i))+".png", pngBytes(t, uint8(10*i)))
	}
	full, err := Open("imagefolder:"+dir, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := func(ds Dataset) []string {
		var n []string
		for _, it := range readAll(t, ds) {
			n = append(n, filepath.Base(it.Name))
		}
		return n
	}
	open := func(limit int, seed uint64) []string {
		ds, err := Open("imagefolder:"+dir, "train", Options{Limit: limit, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(limit, 20); limit > 0 && ds.Len() != want {
			t.Fatalf("limit %d: got %d items want %d", limit, ds.Len(), want)
		}
		if ds.Name() != full.Name() || !slices.Equal(ds.ClassNames(), full.ClassNames()) {
			t.Errorf("limit %d: name or classes changed", limit)
		}
		return names(ds)
	}
	all := names(full)
	for i, test := range []struct {
		a, b      []string
		wantEqual bool
	}{
		{open(0, 1), all, true},
		{open(20, 1), all, true},
		{open(50, 1), all, true},
		{open(5, 1), open(5, 1), true},  // stable for a seed
		{open(5, 1), open(5, 2), false}, // seeds differ
	} {
		if got := slices.Equal(test.a, test.b); got != test.wantEqual {
			t.Errorf("test %d: got equal=%v want %v: %q vs %q", i, got, test.wantEqual, test.a, test.b)
		}
	}
	small, large := open(5, 7), open(12, 7)
	for _, n := range small {
		if !slices.Contains(large, n) {
			t.Errorf("item %s of limit 5 missing from limit 12", n)
		}
	}
	// Dataset order is kept.
	if !slices.IsSortedFunc(large, func(a, b string) int {
		return slices.Index(all, a) - slices.Index(all, b)
	}) {
		t.Errorf("limited items out of dataset order: %q", large)
	}
	// Labels follow their items.
	ds, _ := Open("imagefolder:"+dir, "train", Options{Limit: 6, Seed: 3})
	for _, it := range readAll(t, ds) {
		want := 0
		if strings.Contains(it.Name, string(filepath.Separator)+"b"+string(filepath.Separator)) {
			want = 1
		}
		if it.Label != want {
			t.Errorf("%s: got label %d want %d", it.Name, it.Label, want)
		}
	}
}
