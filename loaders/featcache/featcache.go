// Package featcache stores extracted features as .npy shards so that an interrupted
// extraction resumes where it stopped, a finished one is never recomputed, and the
// tasks of an array job can fill one cache at the same time, each writing its own
// shards, without waiting for one another.
//
// A cache directory is named after its Key: model, dataset, split, preprocessing,
// feature kind, subset and the list of shard IDs. It holds key.json (the key, for
// people and for Load) and, per shard, ID.npy (float32 [n,D] features) and ID.json,
// the shard's record: item count, labels, skipped items, the SHA-256 of the
// features, and the size and modification time of every file its items were read
// from. The record is written after the features, so a shard is complete when its
// record reads back and matches the features beside it. It stays fresh while every
// one of those files keeps its recorded size and modification time: a shard whose
// images were edited, replaced or removed, whose features hold NaN or whose files
// are unreadable is recomputed, and the cache says why on its log.
//
// Every file is written atomically (a temporary .NAME.tmp-* renamed into place);
// key.json is created once and never rewritten. A temporary file older than
// StaleTemp belongs to a killed run and is removed when the cache is opened.
package featcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// Key identifies a set of features. Every field takes part in the directory name.
type Key struct {
	Model      string `json:"model"`      // e.g. the weights directory and its fingerprint
	Dataset    string `json:"dataset"`    // dataset spec, with an absolute path
	Split      string `json:"split"`      // train / test
	Preprocess string `json:"preprocess"` // e.g. "clip-bicubic-224"
	Kind       string `json:"kind"`       // "image-projected" or "image-pre-projection"
	Limit      string `json:"limit,omitempty"`
}

// keyFile is key.json: the key, the layout's version and the shard IDs in item
// order, all part of the directory name (a dataset that gains or loses items or tar
// shards gets a new directory).
type keyFile struct {
	Format int `json:"format"`
	Key
	Shards []string `json:"shards"`
}

// format is the version of the files' layout, part of every key: a cache written in
// another layout is never read.
const format = 2

// DefaultShardSize is the number of items per shard of a dataset cut into runs of
// items (webdataset tars are shards as they are).
const DefaultShardSize = 256

// StaleTemp is the age past which a temporary file in a cache directory is taken
// for the leftover of a killed run: a live writer fills and renames its temporary
// within seconds of creating it.
const StaleTemp = 10 * time.Minute

// Shard describes one shard of a cache: the unit that one task computes and writes.
type Shard struct {
	// ID names the shard's files (ID.npy, ID.json): letters, digits, '.', '_', '-'.
	ID string
	// Items is the number of items, or -1 when it is known only once the shard has
	// been read (a webdataset tar streamed by its task).
	Items int
	// Sources lists the files the shard's items are read from. Their sizes and
	// modification times are recorded with the shard; when they change, the shard
	// is recomputed. Nil (Load) checks the recorded files instead.
	Sources []string
}

// Cache is one keyed directory of feature shards.
type Cache struct {
	// Dir is the cache directory.
	Dir    string
	shards []Shard
	log    io.Writer
}

// Data is the content of one shard.
type Data struct {
	// Features holds [n,dim] rows; rows of skipped items are zero.
	Features []float32
	// Labels holds the n items' labels.
	Labels []int32
	// Skipped maps an item's index within the shard to why it could not be read.
	Skipped map[int]string
	dim     int
}

// ComputeFunc computes shard s (an index into the shards given to Open). Items that
// cannot be read go into Data.Skipped; any error aborts the extraction.
type ComputeFunc func(s int) (*Data, error)

// Result is the outcome of Extract or Load: every shard's items, in order.
type Result struct {
	// Features holds [N,Dim] rows; rows of skipped items are zero.
	Features []float32
	Labels   []int32
	Dim, N   int
	// Skipped maps item index to the reason it was skipped.
	Skipped map[int]string
	// Computed and Loaded count shards computed now and read from disk.
	Computed, Loaded int
}

// ErrNonFinite reports NaN or Inf in computed features.
var ErrNonFinite = errors.New("non-finite feature")

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// tempRE matches atomicfile's temporaries.
var tempRE = regexp.MustCompile(`^\..+\.tmp-[^/]*$`)

// Open returns the cache of key's features, cut into shards, under root: it creates
// the directory and key.json if needed, and removes the temporary files of killed
// runs. log (nil for silence) receives a line when temporaries are removed and
// whenever a shard is recomputed, saying why.
func Open(root string, key Key, shards []Shard, log io.Writer) (*Cache, error) {
	kf := keyFile{Format: format, Key: key}
	seen := map[string]bool{}
	for i, s := range shards {
		if !idRE.MatchString(s.ID) || s.ID == "key" || seen[s.ID] {
			return nil, fmt.Errorf("loaders: featcache: shard %d: bad or repeated ID %q", i, s.ID)
		}
		seen[s.ID] = true
		kf.Shards = append(kf.Shards, s.ID)
	}
	b, err := json.Marshal(kf)
	if err != nil {
		return nil, fmt.Errorf("loaders: featcache: %w", err)
	}
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	name := unsafeChars.ReplaceAllString(filepath.Base(key.Dataset)+"-"+key.Split+"-"+key.Kind, "_")
	c := &Cache{Dir: filepath.Join(root, name+"-"+hex.EncodeToString(sum[:6])), shards: shards, log: log}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("loaders: featcache: %w", err)
	}
	c.removeStaleTemps()
	if err := createOnce(filepath.Join(c.Dir, "key.json"), b); err != nil {
		return nil, fmt.Errorf("loaders: featcache: %w", err)
	}
	return c, nil
}

// Load reads a complete cache directory without recomputing anything, checking every
// shard against the files it was computed from: what a process that has no model
// (a probe on cached features) does.
func Load(dir string, log io.Writer) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "key.json"))
	if err != nil {
		return nil, fmt.Errorf("loaders: featcache: %s is not a feature cache directory: %w", dir, err)
	}
	var key keyFile
	if err := json.Unmarshal(b, &key); err != nil || key.Format != format {
		return nil, fmt.Errorf("loaders: featcache: %s: not a key of format %d (%v)", filepath.Join(dir, "key.json"), format, err)
	}
	c := &Cache{Dir: dir, log: log}
	for _, id := range key.Shards {
		c.shards = append(c.shards, Shard{ID: id, Items: -1})
	}
	return c.Extract(-1, nil, nil)
}

// Extract returns the features of every shard, in order, of dimension dim (-1: as
// recorded): fresh shards are read, the others computed with compute and written as
// soon as each is done (nil compute fails instead, naming the shard). onShard, if
// not nil, is called after each shard with its number of items (for progress).
func (c *Cache) Extract(dim int, compute ComputeFunc, onShard func(items int, cached bool)) (*Result, error) {
	res := &Result{Dim: dim, Skipped: map[int]string{}}
	err := c.walk(dim, nil, compute, onShard, func(d *Data, cached bool) error {
		if res.Dim < 0 {
			res.Dim = d.dim
		} else if d.dim != res.Dim {
			return fmt.Errorf("loaders: featcache: %s: shards of dimension %d and %d", c.Dir, res.Dim, d.dim)
		}
		res.Append(d)
		if cached {
			res.Loaded++
		} else {
			res.Computed++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// FillStats counts what Fill did.
type FillStats struct {
	// Mine is the number of shards Fill was given; Fresh of them were already in the
	// cache, Computed were computed now.
	Mine, Fresh, Computed int
}

// Fill makes the shards for which mine(s) holds fresh, computing those that are
// missing or stale, and touches no other shard: an array task's share.
func (c *Cache) Fill(dim int, mine func(s int) bool, compute ComputeFunc, onShard func(items int, cached bool)) (FillStats, error) {
	var st FillStats
	err := c.walk(dim, mine, compute, onShard, func(_ *Data, cached bool) error {
		st.Mine++
		if cached {
			st.Fresh++
		} else {
			st.Computed++
		}
		return nil
	})
	return st, err
}

// walk gets every shard for which mine (nil: every shard) holds, in order, and hands
// it to visit.
func (c *Cache) walk(dim int, mine func(s int) bool, compute ComputeFunc, onShard func(items int, cached bool), visit func(d *Data, cached bool) error) error {
	for s := range c.shards {
		if mine != nil && !mine(s) {
			continue
		}
		d, cached, err := c.get(s, dim, compute)
		if err != nil {
			return err
		}
		if err := visit(d, cached); err != nil {
			return err
		}
		if onShard != nil {
			onShard(len(d.Labels), cached)
		}
	}
	return nil
}

// get returns shard s, read when fresh and otherwise computed and written.
func (c *Cache) get(s, dim int, compute ComputeFunc) (*Data, bool, error) {
	sh := c.shards[s]
	d, why := c.read(sh, dim)
	if why == "" {
		return d, true, nil
	}
	if compute == nil {
		return nil, false, fmt.Errorf("loaders: featcache: %s: shard %s is not usable: %s", c.Dir, sh.ID, why)
	}
	if why != notComputed {
		c.logf("%s: %s; recomputing", sh.ID, why)
	}
	// Stat before reading: a file that changes while the shard is computed makes
	// the shard stale next time rather than fresh with old content.
	stats, err := statSources(sh.Sources)
	if err != nil {
		return nil, false, fmt.Errorf("loaders: featcache: %w", err)
	}
	d, err = compute(s)
	if err != nil {
		return nil, false, err
	}
	n := len(d.Labels)
	if dim < 0 || len(d.Features) != n*dim || (sh.Items >= 0 && n != sh.Items) {
		return nil, false, fmt.Errorf("loaders: featcache: shard %s: computed %d values for %d items, want %d items of dimension %d", sh.ID, len(d.Features), n, sh.Items, dim)
	}
	for i := range n {
		row := d.Features[i*dim : (i+1)*dim]
		if _, bad := d.Skipped[i]; bad {
			clear(row)
		} else if _, col := FirstNonFinite(row, dim); col >= 0 {
			return nil, false, fmt.Errorf("loaders: featcache: shard %s item %d: %w (%v at column %d)", sh.ID, i, ErrNonFinite, row[col], col)
		}
	}
	for k := range d.Skipped {
		if k < 0 || k >= n {
			return nil, false, fmt.Errorf("loaders: featcache: shard %s: skipped item %d outside [0, %d)", sh.ID, k, n)
		}
	}
	if err := c.write(sh, dim, d, stats); err != nil {
		return nil, false, err
	}
	d.dim = dim
	return d, false, nil
}

// record is a shard's ID.json.
type record struct {
	Items    int            `json:"items"`
	Dim      int            `json:"dim"`
	Features string         `json:"features_sha256"`
	Labels   []int32        `json:"labels"`
	Skipped  map[int]string `json:"skipped,omitempty"`
	Sources  []sourceStat   `json:"sources"`
}

// sourceStat is what a shard remembers of a file it was computed from.
type sourceStat struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

func statSources(paths []string) ([]sourceStat, error) {
	out := make([]sourceStat, len(paths))
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i] = sourceStat{Path: p, Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	}
	return out, nil
}

func (c *Cache) path(sh Shard, ext string) string { return filepath.Join(c.Dir, sh.ID+ext) }

// write stores the features, then the record that makes the shard complete.
func (c *Cache) write(sh Shard, dim int, d *Data, sources []sourceStat) error {
	var buf bytes.Buffer
	if err := npy.WriteFloat32To(&buf, []int{len(d.Labels), dim}, d.Features); err != nil {
		return fmt.Errorf("loaders: featcache: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if err := atomicfile.WriteBytes(c.path(sh, ".npy"), buf.Bytes()); err != nil {
		return fmt.Errorf("loaders: featcache: %w", err)
	}
	rec := record{Items: len(d.Labels), Dim: dim, Features: hex.EncodeToString(sum[:]),
		Labels: d.Labels, Skipped: d.Skipped, Sources: sources}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("loaders: featcache: %w", err)
	}
	if err := atomicfile.WriteBytes(c.path(sh, ".json"), append(b, '\n')); err != nil {
		return fmt.Errorf("loaders: featcache: %w", err)
	}
	return nil
}

// notComputed is read's reason for a shard that has no record: nothing to report.
const notComputed = "not computed yet"

// read returns shard sh when it is complete and fresh, or why it is not.
func (c *Cache) read(sh Shard, dim int) (*Data, string) {
	rp := c.path(sh, ".json")
	b, err := os.ReadFile(rp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notComputed
	}
	if err != nil {
		return nil, err.Error()
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Sprintf("%s: %v", rp, err)
	}
	if why := checkRecord(rec, sh, dim); why != "" {
		return nil, rp + ": " + why
	}
	if why := checkSources(rec.Sources, sh.Sources); why != "" {
		return nil, why
	}
	fp := c.path(sh, ".npy")
	raw, err := os.ReadFile(fp)
	if err != nil {
		return nil, err.Error()
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != rec.Features {
		return nil, fp + " does not hold the features its record describes (killed while being rewritten, or corrupted)"
	}
	a, err := npy.ReadFloat32At(bytes.NewReader(raw), int64(len(raw)), fp)
	if err != nil {
		return nil, err.Error()
	}
	if !slices.Equal(a.Shape, []int{rec.Items, rec.Dim}) {
		return nil, fmt.Sprintf("%s: shape %v, want [%d %d]", fp, a.Shape, rec.Items, rec.Dim)
	}
	if r, col := FirstNonFinite(a.Data, rec.Dim); r >= 0 {
		return nil, fmt.Sprintf("%s: %v at item %d, column %d", fp, a.Data[r*rec.Dim+col], r, col)
	}
	return &Data{Features: a.Data, Labels: rec.Labels, Skipped: rec.Skipped, dim: rec.Dim}, ""
}

// checkRecord says what is wrong with a record for shard sh, or "".
func checkRecord(rec record, sh Shard, dim int) string {
	switch {
	case rec.Items < 0 || len(rec.Labels) != rec.Items:
		return fmt.Sprintf("%d labels for %d items", len(rec.Labels), rec.Items)
	case sh.Items >= 0 && rec.Items != sh.Items:
		return fmt.Sprintf("%d items, the dataset has %d", rec.Items, sh.Items)
	case rec.Dim <= 0 || (dim >= 0 && rec.Dim != dim):
		return fmt.Sprintf("dimension %d, want %d", rec.Dim, dim)
	}
	for k := range rec.Skipped {
		if k < 0 || k >= rec.Items {
			return fmt.Sprintf("skipped item %d outside [0, %d)", k, rec.Items)
		}
	}
	return ""
}

// checkSources compares the recorded files with the shard's (want; nil: the
// recorded ones) and with what is on disk now. It says what changed, or "".
func checkSources(rec []sourceStat, want []string) string {
	if want != nil {
		if len(want) != len(rec) {
			return fmt.Sprintf("its items now come from %d files, not %d", len(want), len(rec))
		}
		for i, p := range want {
			if rec[i].Path != p {
				return fmt.Sprintf("its items now come from %s, not %s", p, rec[i].Path)
			}
		}
	}
	for _, r := range rec {
		st, err := os.Stat(r.Path)
		switch {
		case err != nil:
			return fmt.Sprintf("%s changed since it was cached: %v", r.Path, err)
		case st.Size() != r.Size:
			return fmt.Sprintf("%s changed since it was cached (size %d -> %d bytes)", r.Path, r.Size, st.Size())
		case st.ModTime().UnixNano() != r.ModTime:
			return fmt.Sprintf("%s changed since it was cached (modified %s, cached from %s)", r.Path,
				st.ModTime().Format(time.RFC3339Nano), time.Unix(0, r.ModTime).Format(time.RFC3339Nano))
		}
	}
	return ""
}

// removeStaleTemps deletes the temporaries of killed runs (see StaleTemp).
func (c *Cache) removeStaleTemps() {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	removed := 0
	for _, e := range entries {
		if !tempRE.MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < StaleTemp {
			continue
		}
		if err := os.Remove(filepath.Join(c.Dir, e.Name())); err != nil {
			c.logf("cannot remove %s, left by a killed run: %v", e.Name(), err)
			continue
		}
		removed++
	}
	if removed > 0 {
		c.logf("removed %d temporary files left by killed runs", removed)
	}
}

// createOnce writes path atomically unless it exists, and then checks that it holds
// data: concurrent tasks agree on key.json, and none rewrites another's.
func createOnce(path string, data []byte) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := linkNew(path, data); err != nil {
			return err
		}
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(old, data) {
		return fmt.Errorf("%s describes other features than this run's; delete its directory", path)
	}
	return nil
}

// linkNew writes data to a temporary file and links it to path, so that of several
// processes the first creates path and the others leave it as it is; where hard
// links are not supported, it renames the temporary over path instead.
func linkNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return os.Rename(tmp, path)
	}
	return nil
}

func (c *Cache) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "feature cache %s: %s\n", filepath.Base(c.Dir), fmt.Sprintf(format, args...))
	}
}

// Append adds the items of one shard to r.
func (r *Result) Append(d *Data) {
	if r.Skipped == nil {
		r.Skipped = map[int]string{}
	}
	for k, v := range d.Skipped {
		r.Skipped[r.N+k] = v
	}
	r.Features = append(r.Features, d.Features...)
	r.Labels = append(r.Labels, d.Labels...)
	r.N += len(d.Labels)
}

// Kept returns the features [len(index), Dim] and labels of the items that were
// not skipped, and their indices.
func (r *Result) Kept() (x []float32, labels []int32, index []int) {
	for i := 0; i < r.N; i++ {
		if _, bad := r.Skipped[i]; bad {
			continue
		}
		x = append(x, r.Features[i*r.Dim:(i+1)*r.Dim]...)
		labels = append(labels, r.Labels[i])
		index = append(index, i)
	}
	return x, labels, index
}

// SkippedList returns the skipped indices of r in increasing order.
func (r *Result) SkippedList() []int {
	out := make([]int, 0, len(r.Skipped))
	for k := range r.Skipped {
		out = append(out, k)
	}
	slices.Sort(out)
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

// SafeID turns name into a shard ID's characters.
func SafeID(name string) string {
	return unsafeChars.ReplaceAllString(strings.TrimLeft(name, "."), "_")
}
