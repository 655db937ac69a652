// Package featcache stores extracted features as .npy shards so that an interrupted
// extraction resumes where it stopped and a finished one is never recomputed.
//
// A cache directory is keyed by everything that determines the features: model,
// dataset, split, preprocessing and feature kind. It holds key.json (the key, for
// people), shard-NNNNNN.npy (float32 [n,D] rows for items [i*S, i*S+n)) and, beside a
// shard whose items could not be read, shard-NNNNNN.skipped.json. Each file is written
// atomically and a shard's skipped list is written before its features, so a shard
// whose .npy exists is complete.
package featcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// Key identifies a set of features. Every field takes part in the directory name.
type Key struct {
	Model      string `json:"model"`      // e.g. the weights directory and its config name
	Dataset    string `json:"dataset"`    // dataset spec
	Split      string `json:"split"`      // train / test
	Preprocess string `json:"preprocess"` // e.g. "clip-bicubic-224"
	Kind       string `json:"kind"`       // "image-projected" or "image-pre-projection"
	Limit      string `json:"limit,omitempty"`
}

// DefaultShardSize is the number of items per shard when Open is given 0.
const DefaultShardSize = 256

// Cache is one keyed directory of feature shards.
type Cache struct {
	// Dir is the cache directory.
	Dir string
	// ShardSize is the number of items per shard.
	ShardSize int
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Open returns the cache for key under root, creating its directory.
func Open(root string, key Key, shardSize int) (*Cache, error) {
	if shardSize <= 0 {
		shardSize = DefaultShardSize
	}
	b, _ := json.Marshal(struct {
		Key
		ShardSize int `json:"shard_size"`
	}{key, shardSize})
	sum := sha256.Sum256(b)
	name := unsafeChars.ReplaceAllString(filepath.Base(key.Dataset)+"-"+key.Split+"-"+key.Kind, "_")
	dir := filepath.Join(root, name+"-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loaders: featcache: %w", err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "key.json"), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("loaders: featcache: %w", err)
	}
	return &Cache{Dir: dir, ShardSize: shardSize}, nil
}

func (c *Cache) shardPath(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("shard-%06d.npy", i))
}

func (c *Cache) skippedPath(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("shard-%06d.skipped.json", i))
}

// Has reports whether shard i is complete on disk.
func (c *Cache) Has(i int) bool {
	_, err := os.Stat(c.shardPath(i))
	return err == nil
}

// ComputeFunc fills out ([end-start, dim] rows) with the features of items
// [start, end). Items that cannot be read are returned in skipped (index -> reason)
// and their rows are ignored; any other error aborts the extraction.
type ComputeFunc func(start, end int, out []float32) (skipped map[int]string, err error)

// Result is the outcome of an extraction.
type Result struct {
	// Features holds [N,Dim] rows; rows of skipped items are zero.
	Features []float32
	Dim      int
	// Skipped maps item index to the reason it was skipped.
	Skipped map[int]string
	// Computed and Loaded count shards computed now and read from disk.
	Computed, Loaded int
}

// ErrNonFinite reports NaN or Inf in computed features.
var ErrNonFinite = errors.New("non-finite feature")

// Extract returns the features of n items of dimension dim, loading complete shards
// and computing the others with compute, shard by shard, each written as soon as it
// is done. onShard, if not nil, is called after each shard with the number of items
// it holds (for progress).
func (c *Cache) Extract(n, dim int, compute ComputeFunc, onShard func(items int, cached bool)) (*Result, error) {
	res := &Result{Features: make([]float32, n*dim), Dim: dim, Skipped: map[int]string{}}
	for s := 0; s*c.ShardSize < n; s++ {
		start := s * c.ShardSize
		end := min(start+c.ShardSize, n)
		out := res.Features[start*dim : end*dim]
		if c.Has(s) {
			if err := c.load(s, start, end, dim, out, res.Skipped); err != nil {
				return nil, err
			}
			res.Loaded++
			if onShard != nil {
				onShard(end-start, true)
			}
			continue
		}
		skipped, err := compute(start, end, out)
		if err != nil {
			return nil, err
		}
		for i := start; i < end; i++ {
			if _, bad := skipped[i]; bad {
				clear(out[(i-start)*dim : (i-start+1)*dim])
				continue
			}
			if r, c := FirstNonFinite(out[(i-start)*dim:(i-start+1)*dim], dim); r >= 0 {
				return nil, fmt.Errorf("loaders: featcache: item %d: %w (%v at column %d)", i, ErrNonFinite, out[(i-start)*dim+c], c)
			}
		}
		if len(skipped) > 0 {
			b, _ := json.MarshalIndent(skipped, "", " ")
			if err := atomicfile.WriteBytes(c.skippedPath(s), b); err != nil {
				return nil, fmt.Errorf("loaders: featcache: %w", err)
			}
		}
		if err := npy.WriteFloat32(c.shardPath(s), []int{end - start, dim}, out); err != nil {
			return nil, fmt.Errorf("loaders: featcache: %w", err)
		}
		for k, v := range skipped {
			res.Skipped[k] = v
		}
		res.Computed++
		if onShard != nil {
			onShard(end-start, false)
		}
	}
	return res, nil
}

func (c *Cache) load(s, start, end, dim int, out []float32, skipped map[int]string) error {
	a, err := npy.ReadFloat32(c.shardPath(s))
	if err != nil {
		return fmt.Errorf("loaders: featcache: %w (delete the file to recompute it)", err)
	}
	if len(a.Shape) != 2 || a.Shape[0] != end-start || a.Shape[1] != dim {
		return fmt.Errorf("loaders: featcache: %s: shape %v, want [%d %d] (delete the file to recompute it)", c.shardPath(s), a.Shape, end-start, dim)
	}
	copy(out, a.Data)
	if b, err := os.ReadFile(c.skippedPath(s)); err == nil {
		m := map[int]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("loaders: featcache: %s: %w", c.skippedPath(s), err)
		}
		for k, v := range m {
			skipped[k] = v
		}
	}
	return nil
}

// SkippedList returns the skipped indices of r in increasing order.
func (r *Result) SkippedList() []int {
	out := make([]int, 0, len(r.Skipped))
	for k := range r.Skipped {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// FirstNonFinite returns the row and column of the first NaN or ±Inf in x [rows,dim],
// or -1, -1 when every value is finite.
func FirstNonFinite(x []float32, dim int) (row, col int) {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i / dim, i % dim
		}
	}
	return -1, -1
}
