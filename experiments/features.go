// Package experiments runs the studies gorgoclip exists for: zero-shot classification
// with prompt sets, linear probes at k shots and on full data, and their comparison
// (the CLIP paper's Figure 6 for one dataset). Image features go through a
// resumable cache (loaders/featcache); results are written as CLIP_benchmark-style
// JSON (loaders/results) and drawn by plots.
package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
	// Norm is the model's pixel normalisation (zero: CLIP's).
	Norm images.Normalization
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
	// DatasetSpec and Split identify the data in the cache key, DatasetSpec with an
	// absolute path so that processes started in other directories share it. A "wds:" spec without Limit is cut into its tar shards,
	// each cached whole; other datasets into runs of featcache.DefaultShardSize items.
	DatasetSpec, Split string
	// Limit, Seed and Balanced are the subset options the dataset was opened with
	// (datasets.Options).
	Limit    int
	Seed     uint64
	Balanced bool
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
// CacheDir, features are written shard by shard as they are computed, and a later
// call (after an interruption, say, or after the tasks of an array job, see Extract)
// loads them instead of recomputing; a shard whose images changed since is
// recomputed, and the log says so.
func ImageFeatures(enc ImageEncoder, ds datasets.Dataset, x Extraction) (*Features, error) {
	x.defaults()
	plan, err := planShards(ds, x)
	if err != nil {
		return nil, err
	}
	bar := progress.New(x.Log, "features "+ds.Name(), ds.Len(), "img")
	var res *featcache.Result
	if x.CacheDir == "" {
		if plan.tars == nil {
			// Without a cache, one pass over every item keeps the workers a batch
			// ahead of the model throughout.
			plan.shards = []featcache.Shard{{ID: "all", Items: ds.Len()}}
		}
		compute := plan.compute(enc, x, bar)
		res = &featcache.Result{Dim: x.Dim}
		for s := range plan.shards {
			d, err := compute(s)
			if err != nil {
				return nil, err
			}
			res.Append(d)
		}
	} else {
		c, err := featcache.Open(x.CacheDir, x.key(), plan.shards, x.Log)
		if err != nil {
			return nil, err
		}
		res, err = c.Extract(x.Dim, plan.compute(enc, x, bar), func(items int, cached bool) {
			if cached {
				bar.Add(items)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	bar.Done()
	if x.CacheDir != "" && x.Log != nil {
		fmt.Fprintf(x.Log, "features %s: %d shards read from the cache, %d computed\n", ds.Name(), res.Loaded, res.Computed)
	}
	if res.N != ds.Len() {
		return nil, fmt.Errorf("experiments: %s: %d features for %d items", ds.Name(), res.N, ds.Len())
	}
	f := &Features{Dim: x.Dim}
	var labels []int32
	f.X, labels, f.Index = res.Kept()
	f.N = len(f.Index)
	for _, y := range labels {
		f.Y = append(f.Y, int(y))
	}
	for _, i := range res.SkippedList() {
		f.Skipped = append(f.Skipped, res.Skipped[i])
	}
	return f, nil
}

func (x *Extraction) defaults() {
	if x.BatchSize <= 0 {
		x.BatchSize = clip.DefaultBatchSize
	}
	if x.Workers <= 0 {
		x.Workers = runtime.NumCPU()
	}
}

// key is the cache key of x's features.
func (x *Extraction) key() featcache.Key {
	return featcache.Key{
		Model: x.ModelID, Dataset: x.DatasetSpec, Split: x.Split,
		Preprocess: x.preprocessKey(), Kind: "image-projected",
		Limit: x.subset(),
	}
}

// preprocessKey names the preprocessing in the cache key; CLIP's normalisation keeps
// the name caches had before normalisations were configurable.
func (x *Extraction) preprocessKey() string {
	k := fmt.Sprintf("clip-bicubic-%d", x.Resolution)
	if !x.Norm.IsCLIP() {
		k += fmt.Sprintf("-mean%v-std%v", x.Norm.Mean, x.Norm.Std)
	}
	return k
}

// subset names the subset options in the cache key: a class-balanced subset is
// another than a uniform one of the same size.
func (x *Extraction) subset() string {
	s := fmt.Sprintf("%d/%d", x.Limit, x.Seed)
	if x.Balanced && x.Limit > 0 {
		s += " class-balanced"
	}
	return s
}

// openDataset opens x's split with x's subset options.
func (x *Extraction) openDataset() (datasets.Dataset, error) {
	return datasets.Open(x.DatasetSpec, x.Split, datasets.Options{Limit: x.Limit, Seed: x.Seed, Balanced: x.Balanced})
}

// streamed reports whether x's dataset is cut into its webdataset tar shards, each
// streamed whole, rather than into runs of items: a wds: dataset read without a
// limit (a limit draws items across all shards).
func (x *Extraction) streamed() bool {
	kind, _, _ := strings.Cut(x.DatasetSpec, ":")
	return kind == "wds" && x.Limit == 0
}

// shardPlan is how a split is cut into cache shards and where each shard's items come
// from: tars[s] streamed whole, or items [s*size, s*size+Items) of ds.
type shardPlan struct {
	shards []featcache.Shard
	tars   []string
	ds     datasets.Dataset
}

// planShards cuts ds into cache shards: its tar shards when x.streamed(), else runs
// of featcache.DefaultShardSize items. ds may be nil for a streamed dataset (an
// array task that reads only its own tars); shards' item counts are then unknown.
func planShards(ds datasets.Dataset, x Extraction) (*shardPlan, error) {
	p := &shardPlan{ds: ds}
	if !x.streamed() {
		src, ok := ds.(datasets.Sourcer)
		if !ok {
			return nil, fmt.Errorf("experiments: %s: %T does not name its files (datasets.Sourcer); the cache cannot tell when they change", ds.Name(), ds)
		}
		for start := 0; start < ds.Len(); start += featcache.DefaultShardSize {
			end := min(start+featcache.DefaultShardSize, ds.Len())
			sh := featcache.Shard{ID: fmt.Sprintf("shard-%06d", start/featcache.DefaultShardSize), Items: end - start}
			seen := map[string]bool{}
			for i := start; i < end; i++ {
				for _, f := range src.Sources(i) {
					if !seen[f] {
						seen[f] = true
						sh.Sources = append(sh.Sources, f)
					}
				}
			}
			p.shards = append(p.shards, sh)
		}
		return p, nil
	}
	_, dir, _ := strings.Cut(x.DatasetSpec, ":")
	tars, err := datasets.WDSShards(dir, x.Split)
	if err != nil {
		return nil, err
	}
	p.tars = tars
	count := map[string]int{}
	if ds != nil {
		src, ok := ds.(datasets.Sourcer)
		if !ok {
			return nil, fmt.Errorf("experiments: %s: %T does not name its tar shards (datasets.Sourcer)", ds.Name(), ds)
		}
		for i := 0; i < ds.Len(); i++ {
			count[src.Sources(i)[0]]++
		}
	}
	for _, t := range tars {
		items := -1
		if ds != nil {
			items = count[t]
		}
		id := "tar-" + featcache.SafeID(strings.TrimSuffix(filepath.Base(t), ".tar"))
		p.shards = append(p.shards, featcache.Shard{ID: id, Items: items, Sources: []string{t}})
	}
	return p, nil
}

// compute returns the function that computes shard s with enc.
func (p *shardPlan) compute(enc ImageEncoder, x Extraction, bar *progress.Bar) featcache.ComputeFunc {
	return func(s int) (*featcache.Data, error) {
		if p.tars != nil {
			return encodeShard(enc, x, p.shards[s].ID, streamBatches(p.tars[s], x.BatchSize), bar)
		}
		start := s * featcache.DefaultShardSize
		return encodeShard(enc, x, p.shards[s].ID, itemBatches(p.ds, start, start+p.shards[s].Items, x.BatchSize), bar)
	}
}

// batchJob is one batch of a shard's items travelling from the reader to the
// workers and on to the model.
type batchJob struct {
	start, n int                                // the batch is items [start, start+n) of its shard
	get      func(i int) (datasets.Item, error) // item i of the batch
	labels   []int32
	pixels   []float32
	bad      map[int]string // index in the batch -> why it could not be read
	err      error
}

// batchSource produces a shard's batches in order, until yield returns false.
type batchSource func(yield func(*batchJob) bool) error

// itemBatches reads items [start, end) of ds, in batches of size.
func itemBatches(ds datasets.Dataset, start, end, size int) batchSource {
	return func(yield func(*batchJob) bool) error {
		for b := start; b < end; b += size {
			j := &batchJob{start: b - start, n: min(size, end-b)}
			first := b
			j.get = func(i int) (datasets.Item, error) { return ds.Item(first + i) }
			for i := range j.n {
				y, err := label(ds, first+i)
				if err != nil {
					return err
				}
				j.labels = append(j.labels, int32(y))
			}
			if !yield(j) {
				return nil
			}
		}
		return nil
	}
}

// errStopped ends a stream whose consumer has stopped.
var errStopped = errors.New("experiments: stopped")

// streamBatches reads one webdataset tar front to back, in batches of size.
func streamBatches(tar string, size int) batchSource {
	return func(yield func(*batchJob) bool) error {
		var items []datasets.Item
		next := 0
		send := func() bool {
			batch := items
			j := &batchJob{start: next, n: len(batch), get: func(i int) (datasets.Item, error) { return batch[i], nil }}
			for _, it := range batch {
				j.labels = append(j.labels, int32(it.Label))
			}
			next += len(batch)
			items = nil
			return yield(j)
		}
		err := datasets.StreamWDSShard(tar, func(it datasets.Item) error {
			if items = append(items, it); len(items) == size && !send() {
				return errStopped
			}
			return nil
		})
		if err == nil && len(items) > 0 {
			send()
		}
		if errors.Is(err, errStopped) {
			return nil
		}
		return err
	}
}

// encodeShard encodes the batches of shard id with enc, preprocessing each batch on
// x.Workers goroutines while the model runs the one before.
func encodeShard(enc ImageEncoder, x Extraction, id string, batches batchSource, bar *progress.Bar) (*featcache.Data, error) {
	per := 3 * x.Resolution * x.Resolution
	jobs := make(chan *batchJob, 1) // one batch prepared ahead of the model
	stop := make(chan struct{})
	defer close(stop)
	var readErr error
	go func() {
		defer close(jobs)
		readErr = batches(func(j *batchJob) bool {
			j.pixels, j.bad = make([]float32, j.n*per), map[int]string{}
			j.err = preprocessBatch(x, j, per)
			select {
			case jobs <- j:
			case <-stop:
				return false
			}
			return j.err == nil
		})
	}()
	d := &featcache.Data{Skipped: map[int]string{}}
	for j := range jobs {
		if j.err != nil {
			return nil, j.err
		}
		feats, err := enc.EncodeImages(j.pixels, j.n)
		if err != nil {
			return nil, fmt.Errorf("experiments: encoding items %d..%d of shard %s: %w", j.start, j.start+j.n-1, id, err)
		}
		// Name the image behind a non-finite feature: a corrupt input or a model bug
		// must not slip into the cache or a probe.
		if r, c := featcache.FirstNonFinite(feats, x.Dim); r >= 0 {
			name := fmt.Sprintf("item %d of shard %s", j.start+r, id)
			if it, err := j.get(r); err == nil {
				name = it.Name
			}
			return nil, fmt.Errorf("experiments: %s: %w (%v at column %d)", name, featcache.ErrNonFinite, feats[r*x.Dim+c], c)
		}
		d.Features = append(d.Features, feats...)
		d.Labels = append(d.Labels, j.labels...)
		for k, v := range j.bad {
			d.Skipped[j.start+k] = v
		}
		bar.Add(j.n)
	}
	if readErr != nil { // set before jobs was closed
		return nil, readErr
	}
	return d, nil
}

// preprocessBatch decodes and preprocesses the items of j on x.Workers goroutines.
func preprocessBatch(x Extraction, j *batchJob, per int) error {
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(x.Workers, j.n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := preprocessItem(j.get, i, images.Transform{Size: x.Resolution, Norm: x.Norm}, j.pixels[i*per:(i+1)*per])
				if err == nil {
					continue
				}
				mu.Lock()
				if x.SkipBad {
					j.bad[i] = err.Error()
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

func preprocessItem(get func(i int) (datasets.Item, error), i int, t images.Transform, dst []float32) error {
	it, err := get(i)
	if err != nil {
		return err
	}
	if it.Encoded != nil {
		return t.Bytes(it.Encoded, it.Name, dst)
	}
	if it.Image == nil {
		return fmt.Errorf("experiments: %s: item has no image", it.Name)
	}
	img, err := images.FromImage(it.Image)
	if err != nil {
		return fmt.Errorf("experiments: %s: %w", it.Name, err)
	}
	if err := t.Image(img, dst); err != nil {
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
