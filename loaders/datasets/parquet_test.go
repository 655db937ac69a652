package datasets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// hfImage and hfRow have the layout of a Hugging Face image-classification export.
type hfImage struct {
	Bytes []byte  `parquet:"bytes,optional"`
	Path  *string `parquet:"path,optional"`
}

type hfRow struct {
	Image hfImage `parquet:"image"`
	Label int64   `parquet:"label"`
}

// cifarRow is HF cifar100's layout: "img" and two ClassLabel columns.
type cifarRow struct {
	Img         hfImage `parquet:"img"`
	CoarseLabel int64   `parquet:"coarse_label"`
	FineLabel   int64   `parquet:"fine_label"`
}

// hfMeta is the "huggingface" metadata of a dataset whose features are given.
func hfMeta(t testing.TB, features map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"info": map[string]any{"features": features}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func classLabel(names ...string) map[string]any {
	return map[string]any{"names": names, "_type": "ClassLabel"}
}

var imageFeature = map[string]any{"_type": "Image"}

// writeParquet writes rows in row groups of two; meta "" writes no metadata.
func writeParquet[T any](t testing.TB, dir, rel, meta string, rows []T) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts := []parquet.WriterOption{parquet.MaxRowsPerRowGroup(2)}
	if meta != "" {
		opts = append(opts, parquet.KeyValueMetadata("huggingface", meta))
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	for _, r := range rows { // one row at a time so that row groups are cut at two
		if _, err := w.Write([]T{r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func hfRows(t testing.TB, red uint8, labels ...int64) []hfRow {
	rows := make([]hfRow, len(labels))
	for i, l := range labels {
		path := "img.png"
		rows[i] = hfRow{Image: hfImage{Bytes: pngBytes(t, red+uint8(i)), Path: &path}, Label: l}
	}
	return rows
}

func TestParquet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	names := []string{"tench", "English springer", "cassette player"}
	meta := hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel(names...)})
	// frgfm/imagenette's layout: {config}/{split}/NNNN.parquet, five rows in three row groups.
	writeParquet(t, dir, "full_size/train/0000.parquet", meta, hfRows(t, 10, 0, 1, 2, 0, 1))
	writeParquet(t, dir, "full_size/train/0001.parquet", meta, hfRows(t, 20, 2))
	writeParquet(t, dir, "full_size/validation/0000.parquet", meta, hfRows(t, 30, 2, 1))
	// Hub "data/" layout: {split}-NNNNN-of-NNNNN.parquet.
	flat := t.TempDir()
	writeParquet(t, flat, "data/test-00000-of-00001.parquet", meta, hfRows(t, 40, 1))
	writeParquet(t, flat, "data/train-00000-of-00001.parquet", meta, hfRows(t, 50, 0, 0))
	file := filepath.Join(dir, "full_size", "validation", "0000.parquet")

	for i, test := range []struct {
		spec, split string
		wantLabels  []int
		wantRed     []uint8
	}{
		{"parquet:" + dir, "train", []int{0, 1, 2, 0, 1, 2}, []uint8{10, 11, 12, 13, 14, 20}},
		{"parquet:" + dir, "test", []int{2, 1}, []uint8{30, 31}}, // no test/: validation
		{"parquet:" + dir, "validation", []int{2, 1}, []uint8{30, 31}},
		{"parquet:" + file, "train", []int{2, 1}, []uint8{30, 31}}, // a file is read whatever the split
		{"parquet:" + flat, "test", []int{1}, []uint8{40}},
		{"parquet:" + flat, "train", []int{0, 0}, []uint8{50, 51}},
	} {
		ds, err := Open(test.spec, test.split, Options{})
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if !slices.Equal(ds.ClassNames(), names) {
			t.Errorf("test %d: got classes %q want %q", i, ds.ClassNames(), names)
		}
		items := readAll(t, ds)
		if len(items) != len(test.wantLabels) {
			t.Fatalf("test %d: got %d items want %d", i, len(items), len(test.wantLabels))
		}
		for j, it := range items {
			if r := redOf(t, it); it.Label != test.wantLabels[j] || r != test.wantRed[j] {
				t.Errorf("test %d item %d (%s): got label %d red %d want %d %d", i, j, it.Name, it.Label, r, test.wantLabels[j], test.wantRed[j])
			}
		}
	}
}

// Reading items in any order from many goroutines goes through the row-group cache.
func TestParquetRandomAccess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	labels := make([]int64, 25)
	for i := range labels {
		labels[i] = int64(i % 3)
	}
	meta := hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel("a", "b", "c")})
	path := writeParquet(t, dir, "train.parquet", meta, hfRows(t, 100, labels...))
	osf, f, err := openParquetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer osf.Close()
	if n := len(f.RowGroups()); n != 13 {
		t.Fatalf("got %d row groups want 13 (more than the %d cached)", n, pqCachedGroups)
	}
	ds, err := Open("parquet:"+dir, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for i, it := range readAll(t, ds) {
			if r := redOf(t, it); r != uint8(100+i) || it.Label != i%3 {
				t.Errorf("round %d item %d: got red %d label %d", round, i, r, it.Label)
			}
		}
	}
	for i := 24; i >= 0; i -= 5 {
		it, err := ds.Item(i)
		if err != nil || redOf(t, it) != uint8(100+i) {
			t.Errorf("backwards item %d: got %v", i, err)
		}
	}
}

func TestParquetCIFARLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	names := make([]string, 100)
	for i := range names {
		names[i] = "c" + string(rune('0'+i%10))
	}
	meta := hfMeta(t, map[string]any{
		"img":          imageFeature,
		"coarse_label": classLabel("x", "y"),
		"fine_label":   classLabel(names...),
	})
	writeParquet(t, dir, "cifar100/test-00000-of-00001.parquet", meta, []cifarRow{
		{Img: hfImage{Bytes: pngBytes(t, 7)}, CoarseLabel: 1, FineLabel: 99},
	})
	ds, err := Open("parquet:"+dir, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ds.Item(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.ClassNames()) != 100 || it.Label != 99 || redOf(t, it) != 7 {
		t.Errorf("got %d classes, label %d, want 100 and 99", len(ds.ClassNames()), it.Label)
	}
}

func TestParquetErrors(t *testing.T) {
	t.Parallel()
	meta := hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel("a", "b")})
	for i, test := range []struct {
		write func(dir string)
		opts  Options
		want  []string
	}{
		{func(d string) { writeParquet(t, d, "train/0.parquet", meta, hfRows(t, 0, 0, 1, 2)) },
			Options{}, []string{"0.parquet[row 2]", "label 2 out of range [0, 2)"}},
		{func(d string) { writeParquet(t, d, "train/0.parquet", "", hfRows(t, 0, 0, 1)) },
			Options{}, []string{"no class names", "Options.ClassNames"}},
		{func(d string) { writeParquet(t, d, "train/0.parquet", "", hfRows(t, 0, 0, 3)) },
			Options{ClassNames: []string{"a", "b"}}, []string{"0.parquet[row 1]", "label 3 out of range"}},
		{func(d string) { writeParquet(t, d, "train/0.parquet", meta, hfRows(t, 0, 0, -1)) },
			Options{}, []string{"0.parquet", "row 1", "label -1 out of range"}},
		{func(d string) { writeFile(t, d, "train/0.parquet", []byte("PAR1 this is not parquet PAR1")) },
			Options{}, []string{"0.parquet"}},
		{func(d string) { writeFile(t, d, "readme.md", nil) },
			Options{}, []string{"no .parquet files"}},
		{func(d string) { writeParquet(t, d, "test/0.parquet", meta, hfRows(t, 0, 0)) },
			Options{}, []string{"no .parquet files for split train"}},
		{func(d string) {
			writeParquet(t, d, "train/0.parquet", meta, hfRows(t, 0, 0))
			writeParquet(t, d, "train/1.parquet", hfMeta(t, map[string]any{"label": classLabel("a", "c")}), hfRows(t, 0, 0))
		}, Options{}, []string{"1.parquet", "class names differ", "0.parquet"}},
		{func(d string) {
			writeParquet(t, d, "train/0.parquet", meta, []struct {
				Picture []byte `parquet:"picture"`
				Label   int64  `parquet:"label"`
			}{{[]byte("x"), 0}})
		}, Options{}, []string{"0.parquet", "no image column", "picture"}},
		{func(d string) {
			writeParquet(t, d, "train/0.parquet", meta, []struct {
				Image []byte `parquet:"image"`
				Label string `parquet:"label"`
			}{{[]byte("x"), "cat"}})
		}, Options{}, []string{"0.parquet", `label column "label" is not an integer`}},
		{func(d string) { writeFile(t, d, "train/0.parquet", nil) },
			Options{}, []string{"0.parquet"}},
	} {
		dir := t.TempDir()
		test.write(dir)
		_, err := Open("parquet:"+dir, "train", test.opts)
		wantErr(t, i, err, test.want...)
	}
}

func TestParquetNullImage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	meta := hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel("a")})
	rows := hfRows(t, 0, 0, 0)
	rows[1].Image.Bytes = nil
	writeParquet(t, dir, "train.parquet", meta, rows)
	ds, err := Open("parquet:"+dir, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ds.Item(1)
	wantErr(t, 0, err, "train.parquet[row 1]", "no image bytes")
}

// Damaged files give errors, never panics, whichever byte is hit.
func TestParquetCorruptBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	meta := hfMeta(t, map[string]any{"image": imageFeature, "label": classLabel("a", "b")})
	good, err := os.ReadFile(writeParquet(t, dir, "good.parquet", meta, hfRows(t, 0, 0, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for off := 4; off < len(good)-4; off += 7 {
		bad := slices.Clone(good)
		bad[off] ^= 0xa5
		path := writeFile(t, dir, "bad.parquet", bad)
		ds, err := Open("parquet:"+path, "train", Options{})
		if err != nil {
			continue
		}
		for i := 0; i < ds.Len(); i++ {
			if it, err := ds.Item(i); err == nil {
				it.Decode()
			}
		}
	}
}
