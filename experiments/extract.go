package experiments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/progress"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/featcache"
)

// Task is one task of an array job (a Kubernetes Indexed Job, a Slurm job array):
// the Index-th of Count. Its share of a split is a contiguous run of the split's
// cache shards, the same for every task that computes it, so the tasks together
// cover every shard once.
type Task struct {
	Index, Count int
}

// Share returns the shards [lo, hi) of n that t computes.
func (t Task) Share(n int) (lo, hi int) {
	return n * t.Index / t.Count, n * (t.Index + 1) / t.Count
}

// Validate reports an index outside [0, Count).
func (t Task) Validate() error {
	if t.Count < 1 || t.Index < 0 || t.Index >= t.Count {
		return fmt.Errorf("experiments: task %d of %d: want 0 <= index < count", t.Index, t.Count)
	}
	return nil
}

// ExtractReport is what Extract did for one split.
type ExtractReport struct {
	Split string
	// Dir is the split's cache directory (featcache.Load reads it).
	Dir string
	// Shards is the split's number of shards, of which this task had [Lo, Hi).
	Shards, Lo, Hi int
	featcache.FillStats
}

// Extract computes the task's share of the image features of each split into
// cfg.CacheDir (required): what one task of an array job does. The shares of all
// tasks make up the features a later ZeroShotRun or Compare with the same weights,
// dataset, limits and cache reads without computing any. Every file a task writes
// is its own (its shards) or written once (key.json), atomically; a rerun task
// skips the shards already done; no task waits for another. A webdataset read
// without a limit is shared out by whole tar shards, each streamed front to back by
// its task, which reads no other tar.
func Extract(cfg Config, splits []string, task Task) ([]ExtractReport, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	if cfg.Weights == "" || cfg.Dataset == "" || cfg.CacheDir == "" {
		return nil, fmt.Errorf("experiments: extract needs weights, a dataset and a cache directory")
	}
	if len(splits) == 0 {
		return nil, fmt.Errorf("experiments: extract needs at least one split")
	}
	limits := map[string]int{"train": cfg.TrainLimit, "test": cfg.TestLimit}
	for _, sp := range splits {
		if _, ok := limits[sp]; !ok {
			return nil, fmt.Errorf("experiments: extract: split %q: want train or test (the splits compare reads)", sp)
		}
	}
	if err := checkWritable(cfg.CacheDir, "cache"); err != nil {
		return nil, err
	}
	m, err := loadModel(&cfg)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	modelID := cacheModelID(&cfg, m)
	var out []ExtractReport
	for _, sp := range splits {
		r, err := extractSplit(m, &cfg, modelID, sp, limits[sp], task)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func extractSplit(m *clip.Model, cfg *Config, modelID, split string, limit int, task Task) (ExtractReport, error) {
	x := cfg.extraction(m, modelID, split, limit)
	x.defaults()
	var ds datasets.Dataset
	kind, _, _ := strings.Cut(x.DatasetSpec, ":")
	name := kind + "/" + split // as the dataset would name itself
	if !x.streamed() {
		var err error
		if ds, err = x.openDataset(); err != nil {
			return ExtractReport{}, err
		}
		name = ds.Name()
	}
	plan, err := planShards(ds, x)
	if err != nil {
		return ExtractReport{}, err
	}
	r := ExtractReport{Split: split, Shards: len(plan.shards)}
	r.Lo, r.Hi = task.Share(len(plan.shards))
	items := 0
	for _, sh := range plan.shards[r.Lo:r.Hi] {
		items += max(sh.Items, 0) // 0 (unknown) for streamed tars
	}
	if r.Lo == r.Hi {
		cfg.logf("features %s: task %d of %d has none of the %d shards", name, task.Index, task.Count, r.Shards)
	} else {
		cfg.logf("features %s: task %d of %d takes shards %d..%d of %d", name, task.Index, task.Count, r.Lo, r.Hi-1, r.Shards)
	}
	c, err := featcache.Open(x.CacheDir, x.key(), plan.shards, x.Log)
	if err != nil {
		return ExtractReport{}, err
	}
	r.Dir = c.Dir
	bar := progress.New(x.Log, "features "+name, items, "img")
	r.FillStats, err = c.Fill(x.Dim, func(s int) bool { return r.Lo <= s && s < r.Hi }, plan.compute(m, x, bar), func(n int, cached bool) {
		if cached {
			bar.Add(n)
		}
	})
	if err != nil {
		return ExtractReport{}, err
	}
	bar.Done()
	cfg.logf("features %s: task %d of %d: %d shards read from the cache, %d computed", name, task.Index, task.Count, r.Fresh, r.Computed)
	return r, nil
}

// extraction is the Extraction of a split with cfg's options, the same for Extract,
// ZeroShotRun and Compare so that they share cached features.
func (cfg *Config) extraction(m *clip.Model, modelID, split string, limit int) Extraction {
	mc := m.Config()
	return Extraction{
		Resolution: mc.Vision.ImageResolution, Norm: m.Transform().Norm, Dim: mc.EmbedDim,
		BatchSize: cfg.BatchSize, Workers: cfg.Workers, SkipBad: cfg.SkipBad,
		CacheDir: cfg.CacheDir, ModelID: modelID, DatasetSpec: canonicalSpec(cfg.Dataset), Split: split,
		// The training subset is class-balanced (see Config.TrainLimit).
		Limit: limit, Seed: cfg.LimitSeed, Balanced: split == "train", Log: cfg.Log,
	}
}

// checkWritable creates dir if needed and a file in it, so that a run fails at once,
// naming dir, rather than after its work when it saves the results.
func checkWritable(dir, what string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("experiments: %s directory %s: %w", what, dir, err)
	}
	f, err := os.CreateTemp(dir, ".gorgoclip-write-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("experiments: %s directory %s is not writable: %w", what, filepath.Clean(dir), err)
	}
	f.Close()
	return os.Remove(f.Name())
}
