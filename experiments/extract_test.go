package experiments

import (
	"archive/tar"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
)

func TestTaskShare(t *testing.T) {
	for i, test := range []struct {
		n, count int
		want     [][2]int
	}{
		{10, 3, [][2]int{{0, 3}, {3, 6}, {6, 10}}},
		{2, 4, [][2]int{{0, 0}, {0, 1}, {1, 1}, {1, 2}}},
		{5, 1, [][2]int{{0, 5}}},
	} {
		covered := 0
		for k := range test.count {
			lo, hi := Task{k, test.count}.Share(test.n)
			if got := [2]int{lo, hi}; got != test.want[k] {
				t.Errorf("test %d: task %d: got %v want %v", i, k, got, test.want[k])
			}
			if lo != covered {
				t.Errorf("test %d: task %d starts at %d, the previous ended at %d", i, k, lo, covered)
			}
			covered = hi
		}
		if covered != test.n {
			t.Errorf("test %d: tasks cover %d of %d shards", i, covered, test.n)
		}
	}
	for _, bad := range []Task{{3, 3}, {-1, 2}, {0, 0}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// pngOf encodes a w x h image of one colour.
func pngOf(t *testing.T, w, h int, c color.Gray) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = c.Y
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeWDS writes a webdataset with shards[split] tars of perTar samples, each a PNG
// whose grey level encodes its position, labelled position % 3.
func writeWDS(t *testing.T, shards map[string]int, perTar int) string {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "classnames.txt"), []byte("zero\none\ntwo\n"), 0o644)
	for split, n := range shards {
		os.MkdirAll(filepath.Join(root, split), 0o755)
		for s := range n {
			var b bytes.Buffer
			w := tar.NewWriter(&b)
			for k := range perTar {
				pos := s*perTar + k
				key := fmt.Sprintf("%s%04d", split, pos)
				for _, m := range []struct {
					name string
					data []byte
				}{{key + ".png", pngOf(t, 40+k, 30, color.Gray{Y: uint8(20 * pos)})}, {key + ".cls", []byte(fmt.Sprint(pos % 3))}} {
					w.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
					w.Write(m.data)
				}
			}
			w.Close()
			if err := os.WriteFile(filepath.Join(root, split, fmt.Sprintf("%d.tar", s)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// TestExtractWDSTasks: three tasks share a webdataset out by whole tars; a task reads
// no tar but its own (the others are garbage while it runs); then a zero-shot run
// reads every shard from the cache, computes none, and gets the features a run
// without any cache computes.
func TestExtractWDSTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the fixture model")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	root := writeWDS(t, map[string]int{"train": 2, "test": 4}, 3)
	cache := t.TempDir()
	var logs [3]bytes.Buffer
	cfg := func(task int) Config {
		return Config{Weights: weights, Vocab: vocab, Dataset: "wds:" + root, CacheDir: cache, BatchSize: 2, Workers: 2, Log: &logs[task]}
	}

	// Task 1 of 3 owns test/1.tar and train/0.tar; every other tar is garbage meanwhile.
	tars, _ := filepath.Glob(filepath.Join(root, "*", "*.tar"))
	saved := map[string][]byte{}
	for _, p := range tars {
		if p != filepath.Join(root, "test", "1.tar") && p != filepath.Join(root, "train", "0.tar") {
			saved[p], _ = os.ReadFile(p)
			os.WriteFile(p, []byte("garbage"), 0o644)
		}
	}
	reps, err := Extract(cfg(1), []string{"train", "test"}, Task{1, 3})
	if err != nil {
		t.Fatalf("task 1: %v\n%s", err, &logs[1])
	}
	if len(reps) != 2 || reps[0].Shards != 2 || reps[0].Lo != 0 || reps[0].Hi != 1 || reps[1].Shards != 4 || reps[1].Lo != 1 || reps[1].Hi != 2 ||
		reps[0].Computed != 1 || reps[1].Computed != 1 {
		t.Fatalf("task 1 reports %+v", reps)
	}
	for p, b := range saved {
		os.WriteFile(p, b, 0o644)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for _, task := range []int{0, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[task] = Extract(cfg(task), []string{"train", "test"}, Task{task, 3})
		}()
	}
	wg.Wait()
	for task, err := range errs {
		if err != nil {
			t.Fatalf("task %d: %v\n%s", task, err, &logs[task])
		}
	}
	npys, _ := filepath.Glob(filepath.Join(reps[1].Dir, "tar-*.npy"))
	if len(npys) != 4 {
		t.Errorf("test cache holds %q, want tar-0..3.npy", npys)
	}
	if !strings.Contains(logs[2].String(), "task 2 of 3 takes shards 2..3 of 4") {
		t.Errorf("task 2 log:\n%s", &logs[2])
	}

	var log bytes.Buffer
	zc := cfg(0)
	zc.Log = &log
	rs, err := ZeroShotRun(zc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "features wds/test: 4 shards read from the cache, 0 computed") || rs.ZeroShot[0].Test != 12 {
		t.Errorf("zero-shot after the tasks (%d test items):\n%s", rs.ZeroShot[0].Test, &log)
	}

	// The cached features are those of a run without a cache, bit for bit.
	m, err := clip.Load(weights, clip.WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ds, err := datasets.Open("wds:"+root, "test", datasets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := zc.extraction(m, ModelID(weights), "test", 0)
	cached, err := ImageFeatures(m, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	x.CacheDir = ""
	fresh, err := ImageFeatures(m, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached, fresh) {
		t.Errorf("features from the tasks' cache differ from a run without cache")
	}
	if !slices.Equal(fresh.Y, []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}) {
		t.Errorf("labels %v", fresh.Y)
	}
}

// TestImageFeaturesStaleImages: an image edited in place (same name, same count of
// images) is noticed: its shard is recomputed, the log says why, and the features are
// the new image's. (Issue 20, item 4: the cache served the old features.)
func TestImageFeaturesStaleImages(t *testing.T) {
	root := writeFolder(t, 3, nil)
	ds, err := datasets.Open("imagefolder:"+root, "test", datasets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc := &meanEncoder{res: 16}
	var log bytes.Buffer
	x := Extraction{Resolution: 16, Dim: 3, BatchSize: 4, Workers: 2, CacheDir: t.TempDir(),
		ModelID: "mean", DatasetSpec: "imagefolder:" + root, Split: "test", Log: &log}
	before, err := ImageFeatures(enc, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	// val/dark/b.png becomes white, keeping its name.
	edited := filepath.Join(root, "val", "dark", "b.png")
	if err := os.WriteFile(edited, pngOf(t, 20, 12, color.Gray{Y: 255}), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // coarse modification times must not hide the edit
	os.Chtimes(edited, later, later)
	log.Reset()
	after, err := ImageFeatures(enc, ds, x)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`shard-000000: .*b\.png changed since it was cached .*; recomputing`).MatchString(log.String()) ||
		!strings.Contains(log.String(), "0 shards read from the cache, 1 computed") {
		t.Errorf("log does not say the shard is recomputed because b.png changed:\n%s", &log)
	}
	if before.X[1*3] >= 0 || after.X[1*3] <= 0 {
		t.Errorf("item 1's feature: %v before, %v after; want dark, then light", before.X[3:6], after.X[3:6])
	}
	if !reflect.DeepEqual(before.X[:3], after.X[:3]) || !reflect.DeepEqual(before.X[6:], after.X[6:]) {
		t.Errorf("the other items' features changed")
	}
}

// TestCompareUnwritableOut: compare refuses an output directory it cannot write to
// before it loads the model or computes any feature. (Issue 20: it ran the whole
// pipeline first.)
func TestCompareUnwritableOut(t *testing.T) {
	fm := testfix.FashionMNIST(t)
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o644)
	outs := []string{filepath.Join(file, "out")}
	if os.Geteuid() != 0 { // root writes to read-only directories anyway
		ro := filepath.Join(t.TempDir(), "ro")
		os.Mkdir(ro, 0o555)
		outs = append(outs, ro)
	}
	for i, out := range outs {
		var log bytes.Buffer
		cache := t.TempDir()
		_, err := Compare(Config{Weights: weights, Vocab: vocab, Dataset: "fashion-mnist:" + fm,
			TrainLimit: 300, TestLimit: 300, Shots: []int{1}, Seeds: 1, NoFull: true, C: 1, Out: out, CacheDir: cache, Log: &log})
		if err == nil || !strings.Contains(err.Error(), "output directory "+out) {
			t.Errorf("test %d: got %v, want an error naming the output directory %s", i, err, out)
		}
		if entries, _ := os.ReadDir(cache); len(entries) > 0 || strings.Contains(log.String(), "features") {
			t.Errorf("test %d: features were computed before the output was checked:\n%s", i, &log)
		}
	}
}
