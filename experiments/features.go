// Package experiments runs the studies gorgoclip exists for: zero-shot classification
// with prompt sets, linear probes at k shots and on full data, and their comparison
// (the CLIP paper's Figure 6 for one dataset). Image features go through a
// resumable cache (loaders/featcache); results are written as CLIP_benchmark-style
// JSON (experiments/results) and drawn by plots.
package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/gorgoclip/gorgoclip/internal/progress"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/featcache"
	"github.com/gorgoclip/gorgoclip/loaders/images"
)

// ImageEncoder is what feature extraction needs of a model; *clip.Model satisfies it.
type ImageEncoder interface {
	EncodeImages(pixels []float32, n int) ([]float32, error)
}

var _ ImageEncoder = (*clip.Model)(nil)

// Extraction configures ImageFeatures.
type Extraction struct {
	// Resolution is the model's input size (pixels per side).
	Resolution int
	// Dim is the feature width.
	Dim int
	// BatchSize is the number of images per model call (default 32).
	BatchSize int
	// Workers decode and preprocess images in parallel with the model
	// (default: the number of CPUs).
	Workers int
	// SkipBad skips images that cannot be decoded, listing them, instead of failing.
	SkipBad bool
	// CacheDir holds the feature shards; empty disables the cache.
	CacheDir string
	// ModelID identifies the weights in the cache key (see ModelID).
	ModelID string
	// DatasetSpec and Split identify the data in the cache key.
	DatasetSpec, Split string
	// Limit and Seed are the subset options the dataset was opened with.
	Limit int
	Seed  uint64
	// Log receives progress lines (items/s, ETA); nil for silence.
	Log io.Writer
}

// Features are the image features of a dataset split.
type Features struct {
	// X holds [N,Dim] rows, Y the labels. Skipped items are removed.
	X   []float32
	Y   []int
	N   int
	Dim int
	// Index maps each row to its item index in the dataset.
	Index []int
	// Skipped lists items that could not be read (SkipBad), as "NAME: reason".
	Skipped []string
}

// ModelID fingerprints a weights directory by path, file names, sizes and times, so
// that cached features are recomputed when the weights change.
func ModelID(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	h := sha256.New()
	fmt.Fprintln(h, abs)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() {
			fmt.Fprintln(h, e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return filepath.Base(abs) + "@" + hex.EncodeToString(h.Sum(nil)[:8])
}

// ImageFeatures encodes every image of ds with enc. Decoding and preprocessing run on
// Workers goroutines a batch ahead of the model, so it never waits for them. With a
// CacheDir, features are written in shards as they are computed, and a later call
// (after an interruption, say) loads them instead of recomputing.
func ImageFeatures(enc ImageEncoder, ds datasets.Dataset, x Extraction) (*Features, error) {
	if x.BatchSize <= 0 {
		x.BatchSize = clip.DefaultBatchSize
	}
	if x.Workers <= 0 {
		x.Workers = runtime.NumCPU()
	}
	n := ds.Len()
	bar := progress.New(x.Log, "features "+ds.Name(), n, "img")
	var res *featcache.Result
	var err error
	compute := func(start, end int, out []float32) (map[int]string, error) {
		return encodeRange(enc, ds, x, start, end, out, bar)
	}
	if x.CacheDir == "" {
		res = &featcache.Result{Features: make([]float32, n*x.Dim), Dim: x.Dim, Skipped: map[int]string{}}
		var skipped map[int]string
		if skipped, err = compute(0, n, res.Features); err == nil {
			for k, v := range skipped {
				res.Skipped[k] = v
			}
		}
	} else {
		var c *featcache.Cache
		c, err = featcache.Open(x.CacheDir, featcache.Key{
			Model: x.ModelID, Dataset: x.DatasetSpec, Split: x.Split,
			Preprocess: fmt.Sprintf("clip-bicubic-%d", x.Resolution), Kind: "image-projected",
			Limit: fmt.Sprintf("%d/%d", x.Limit, x.Seed),
		}, 0)
		if err == nil {
			res, err = c.Extract(n, x.Dim, compute, func(items int, cached bool) {
				if cached {
					bar.Add(items)
				}
			})
		}
	}
	if err != nil {
		return nil, err
	}
	bar.Done()
	if x.CacheDir != "" && x.Log != nil {
		fmt.Fprintf(x.Log, "features %s: %d shards read from the cache, %d computed\n", ds.Name(), res.Loaded, res.Computed)
	}
	f := &Features{Dim: x.Dim}
	for i := 0; i < n; i++ {
		if _, bad := res.Skipped[i]; bad {
			continue
		}
		y, err := label(ds, i)
		if err != nil {
			return nil, err
		}
		f.X = append(f.X, res.Features[i*x.Dim:(i+1)*x.Dim]...)
		f.Y = append(f.Y, y)
		f.Index = append(f.Index, i)
		f.N++
	}
	for _, i := range res.SkippedList() {
		f.Skipped = append(f.Skipped, res.Skipped[i])
	}
	return f, nil
}

// batchJob is one batch of preprocessed pixels travelling from the workers to the model.
type batchJob struct {
	start, n int
	pixels   []float32
	bad      map[int]string
	err      error
}

// encodeRange fills out with the features of items [start, end).
func encodeRange(enc ImageEncoder, ds datasets.Dataset, x Extraction, start, end int, out []float32, bar *progress.Bar) (map[int]string, error) {
	r := x.Resolution
	per := 3 * r * r
	jobs := make(chan *batchJob, 1) // one batch prepared ahead of the model
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(jobs)
		for b := start; b < end; b += x.BatchSize {
			j := &batchJob{start: b, n: min(x.BatchSize, end-b), bad: map[int]string{}}
			j.pixels = make([]float32, j.n*per)
			j.err = preprocessBatch(ds, x, j, per)
			select {
			case jobs <- j:
			case <-stop:
				return
			}
			if j.err != nil {
				return
			}
		}
	}()
	skipped := map[int]string{}
	for j := range jobs {
		if j.err != nil {
			return nil, j.err
		}
		feats, err := enc.EncodeImages(j.pixels, j.n)
		if err != nil {
			return nil, fmt.Errorf("experiments: encoding items %d..%d of %s: %w", j.start, j.start+j.n-1, ds.Name(), err)
		}
		// Name the image behind a non-finite feature: a corrupt input or a model bug
		// must not slip into the cache or a probe.
		if r, c := featcache.FirstNonFinite(feats, x.Dim); r >= 0 {
			name := fmt.Sprintf("item %d", j.start+r)
			if it, err := ds.Item(j.start + r); err == nil {
				name = it.Name
			}
			return nil, fmt.Errorf("experiments: %s: %w (%v at column %d)", name, featcache.ErrNonFinite, feats[r*x.Dim+c], c)
		}
		copy(out[(j.start-start)*x.Dim:], feats)
		for k, v := range j.bad {
			skipped[k] = v
		}
		bar.Add(j.n)
	}
	return skipped, nil
}

// preprocessBatch decodes and preprocesses the items of j on x.Workers goroutines.
func preprocessBatch(ds datasets.Dataset, x Extraction, j *batchJob, per int) error {
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(x.Workers, j.n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := preprocessItem(ds, j.start+i, x.Resolution, j.pixels[i*per:(i+1)*per])
				if err == nil {
					continue
				}
				mu.Lock()
				if x.SkipBad {
					j.bad[j.start+i] = err.Error()
				} else if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < j.n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstErr
}

func preprocessItem(ds datasets.Dataset, i, size int, dst []float32) error {
	it, err := ds.Item(i)
	if err != nil {
		return err
	}
	if it.Encoded != nil {
		return images.PreprocessBytes(it.Encoded, it.Name, size, dst)
	}
	if it.Image == nil {
		return fmt.Errorf("experiments: %s: item has no image", it.Name)
	}
	img, err := images.FromImage(it.Image)
	if err != nil {
		return fmt.Errorf("experiments: %s: %w", it.Name, err)
	}
	if err := images.Preprocess(img, size, dst); err != nil {
		return fmt.Errorf("experiments: %s: %w", it.Name, err)
	}
	return nil
}

// label returns item i's label, cheaply where the dataset allows.
func label(ds datasets.Dataset, i int) (int, error) {
	if l, ok := ds.(datasets.Labeler); ok {
		return l.Label(i), nil
	}
	it, err := ds.Item(i)
	if err != nil {
		return 0, err
	}
	return it.Label, nil
}
