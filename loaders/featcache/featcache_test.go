package featcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// source files: item i of the test datasets is read from files[i/2], so that a shard
// of 4 items has two sources.
func writeSources(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i := 0; i < (n+1)/2; i++ {
		p := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("image %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}

// shardsOf cuts n items into shards of size items whose sources are files[i/2].
func shardsOf(n, size int, files []string) []Shard {
	var out []Shard
	for s := 0; s*size < n; s++ {
		sh := Shard{ID: fmt.Sprintf("shard-%06d", s), Items: min(size, n-s*size)}
		for i := s * size; i < s*size+sh.Items; i += 2 {
			sh.Sources = append(sh.Sources, files[i/2])
		}
		out = append(out, sh)
	}
	return out
}

// counter computes shard s of size-item shards as features (i, -i) and label i%3,
// counts the calls, fails from shard failAt on, and skips item 1.
type counter struct {
	mu     sync.Mutex
	calls  []int
	n      int
	size   int
	failAt int
}

func (c *counter) compute(s int) (*Data, error) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
	if s >= c.failAt {
		return nil, errors.New("killed")
	}
	start, end := s*c.size, min((s+1)*c.size, c.n)
	d := &Data{Skipped: map[int]string{}}
	for i := start; i < end; i++ {
		d.Features = append(d.Features, float32(i), float32(-i))
		d.Labels = append(d.Labels, int32(i%3))
	}
	if start == 0 {
		d.Skipped[1] = "corrupt image x.jpg"
	}
	return d, nil
}

var testKey = Key{Model: "m", Dataset: "imagefolder:/x", Split: "test", Preprocess: "p", Kind: "image"}

func TestResume(t *testing.T) {
	root := t.TempDir()
	files := writeSources(t, 10)
	shards := shardsOf(10, 4, files)
	c, err := Open(root, testKey, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An interruption after two shards: the error comes back and two shards stay.
	cnt := &counter{n: 10, size: 4, failAt: 2}
	if _, err := c.Extract(2, cnt.compute, nil); err == nil {
		t.Fatal("expected the interruption error")
	}
	var log bytes.Buffer
	c2, err := Open(root, testKey, shards, &log)
	if err != nil || c2.Dir != c.Dir {
		t.Fatalf("reopened %v, %v; want %s", c2, err, c.Dir)
	}
	cnt = &counter{n: 10, size: 4, failAt: 100}
	res, err := c2.Extract(2, cnt.compute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cnt.calls, []int{2}) || res.Loaded != 2 || res.Computed != 1 {
		t.Fatalf("resume computed shards %v (loaded %d computed %d), want only [2]", cnt.calls, res.Loaded, res.Computed)
	}
	if log.Len() != 0 {
		t.Errorf("a plain resume logged %q", log.String())
	}
	if res.N != 10 || res.Features[2*9] != 9 || res.Features[2*9+1] != -9 || res.Features[2*5] != 5 || res.Labels[8] != 2 {
		t.Fatalf("features %v labels %v", res.Features, res.Labels)
	}
	if !reflect.DeepEqual(res.SkippedList(), []int{1}) || res.Features[2] != 0 || res.Features[3] != 0 {
		t.Fatalf("skipped %v row %v", res.Skipped, res.Features[2:4])
	}
	// A different key, or other shards, is a different directory.
	for i, other := range []struct {
		key    Key
		shards []Shard
	}{{Key{Model: "other"}, shards}, {testKey, shardsOf(20, 4, writeSources(t, 20))}} {
		c3, err := Open(root, other.key, other.shards, nil)
		if err != nil || c3.Dir == c.Dir {
			t.Errorf("test %d: %v, directory %s", i, err, c3.Dir)
		}
	}
}

// TestFillDisjoint: three tasks fill their shares of one cache concurrently (run
// under -race), each writing only its own shards; then reading computes nothing and
// gives what one process computing everything gives.
func TestFillDisjoint(t *testing.T) {
	root := t.TempDir()
	files := writeSources(t, 21)
	shards := shardsOf(21, 4, files) // 6 shards
	var wg sync.WaitGroup
	counters := make([]*counter, 3)
	errs := make([]error, 3)
	for task := range 3 {
		counters[task] = &counter{n: 21, size: 4, failAt: 100}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(root, testKey, shards, nil)
			if err == nil {
				var st FillStats
				st, err = c.Fill(2, func(s int) bool { return s%3 == task }, counters[task].compute, nil)
				if err == nil && (st.Mine != 2 || st.Computed != 2 || st.Fresh != 0) {
					err = fmt.Errorf("task %d: %+v", task, st)
				}
			}
			errs[task] = err
		}()
	}
	wg.Wait()
	for task, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{task, task + 3}; !reflect.DeepEqual(counters[task].calls, want) {
			t.Errorf("task %d computed %v, want %v", task, counters[task].calls, want)
		}
	}
	c, _ := Open(root, testKey, shards, nil)
	// A rerun of a task finds its shards done.
	again := &counter{n: 21, size: 4, failAt: 100}
	if st, err := c.Fill(2, func(s int) bool { return s%3 == 1 }, again.compute, nil); err != nil || st.Fresh != 2 || len(again.calls) != 0 {
		t.Fatalf("rerun task: %+v, %v, computed %v", st, err, again.calls)
	}
	res, err := c.Extract(2, again.compute, nil)
	if err != nil || res.Computed != 0 || res.Loaded != 6 {
		t.Fatalf("%+v %v", res, err)
	}
	single, err := Open(t.TempDir(), testKey, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := single.Extract(2, (&counter{n: 21, size: 4, failAt: 100}).compute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Features, want.Features) || !reflect.DeepEqual(res.Labels, want.Labels) || !reflect.DeepEqual(res.Skipped, want.Skipped) {
		t.Errorf("tasks' cache differs from one process's")
	}
	entries, _ := os.ReadDir(c.Dir)
	if len(entries) != 1+2*6 {
		t.Errorf("%d files in the cache, want key.json and 6 shards of 2 files", len(entries))
	}
}

// TestStaleSources: a shard whose images changed (same names, same count) is
// recomputed, alone, and the log says which file changed. (Issue 20, item 4: the
// cache served the old features.)
func TestStaleSources(t *testing.T) {
	root := t.TempDir()
	files := writeSources(t, 12)
	shards := shardsOf(12, 4, files)
	c, err := Open(root, testKey, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Extract(2, (&counter{n: 12, size: 4, failAt: 100}).compute, nil); err != nil {
		t.Fatal(err)
	}
	for i, edit := range []struct {
		file int // files[file] is in shard file/2
		do   func(p string) error
		want string
	}{
		// Same size, new content and modification time.
		{3, func(p string) error { return os.WriteFile(p, []byte("IMAGE 3"), 0o644) }, "modified"},
		{4, func(p string) error { return os.WriteFile(p, []byte("a larger image 4"), 0o644) }, "size 7 -> 16 bytes"},
		{0, os.Remove, "no such file"},
	} {
		if err := edit.do(files[edit.file]); err != nil {
			t.Fatal(err)
		}
		// Modification times can be coarse: make the change visible.
		os.Chtimes(files[edit.file], time.Now(), time.Now().Add(time.Duration(i+1)*time.Hour))
		var log bytes.Buffer
		c, _ := Open(root, testKey, shards, &log)
		cnt := &counter{n: 12, size: 4, failAt: 100}
		res, err := c.Extract(2, cnt.compute, nil)
		if msg := log.String(); !strings.Contains(msg, files[edit.file]+" changed since it was cached") || !strings.Contains(msg, edit.want) || !strings.Contains(msg, "recomputing") {
			t.Errorf("test %d: log %q does not say %s changed (%s)", i, msg, files[edit.file], edit.want)
		}
		if edit.file == 0 {
			// A shard cannot be recomputed without its file: an error names it.
			if err == nil || !strings.Contains(err.Error(), files[0]) {
				t.Errorf("test %d: got %v, want an error naming %s", i, err, files[0])
			}
			continue
		}
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if want := []int{edit.file / 2}; !reflect.DeepEqual(cnt.calls, want) || res.Loaded != 2 {
			t.Errorf("test %d: recomputed %v (loaded %d), want %v", i, cnt.calls, res.Loaded, want)
		}
	}
}

// rewriteShard replaces a shard's features with x, keeping its record consistent (as a
// writer that produced them would have), so that only the values are wrong.
func rewriteShard(t *testing.T, c *Cache, id string, x []float32, dim int) {
	t.Helper()
	var buf bytes.Buffer
	if err := npy.WriteFloat32To(&buf, []int{len(x) / dim, dim}, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir, id+".npy"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rp := filepath.Join(c.Dir, id+".json")
	b, err := os.ReadFile(rp)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	rec.Features = hex.EncodeToString(sum[:])
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(rp, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBadShardRecomputed: NaN in a cached shard, a corrupt or truncated .npy, a
// record that does not match its features, or an unreadable record is never used:
// the shard is recomputed and the log names the file. (Issue 20: "NaN in a cache
// shard is used silently".)
func TestBadShardRecomputed(t *testing.T) {
	files := writeSources(t, 8)
	shards := shardsOf(8, 4, files)
	nan := float32(math.NaN())
	for i, test := range []struct {
		spoil func(c *Cache)
		want  string
	}{
		{func(c *Cache) { rewriteShard(t, c, "shard-000001", []float32{4, -4, 5, nan, 6, -6, 7, -7}, 2) }, "shard-000001.npy: NaN at item 1, column 1"},
		{func(c *Cache) {
			rewriteShard(t, c, "shard-000001", []float32{4, -4, 5, -5, float32(math.Inf(1)), -6, 7, -7}, 2)
		}, "shard-000001.npy: +Inf at item 2, column 0"},
		{func(c *Cache) { os.WriteFile(filepath.Join(c.Dir, "shard-000001.npy"), []byte("garbage"), 0o644) }, "shard-000001.npy does not hold the features its record describes"},
		{func(c *Cache) {
			b, _ := os.ReadFile(filepath.Join(c.Dir, "shard-000001.npy"))
			os.WriteFile(filepath.Join(c.Dir, "shard-000001.npy"), b[:len(b)-4], 0o644)
		}, "shard-000001.npy does not hold"},
		{func(c *Cache) { os.WriteFile(filepath.Join(c.Dir, "shard-000001.json"), []byte("{"), 0o644) }, "shard-000001.json: unexpected end of JSON input"},
		{func(c *Cache) { rewriteShard(t, c, "shard-000001", []float32{4, -4, 5, -5, 6, -6}, 2) }, "shard-000001.npy: shape [3 2], want [4 2]"},
	} {
		root := t.TempDir()
		c, err := Open(root, testKey, shards, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.Extract(2, (&counter{n: 8, size: 4, failAt: 100}).compute, nil)
		if err != nil {
			t.Fatal(err)
		}
		test.spoil(c)
		var log bytes.Buffer
		c, _ = Open(root, testKey, shards, &log)
		cnt := &counter{n: 8, size: 4, failAt: 100}
		got, err := c.Extract(2, cnt.compute, nil)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if !reflect.DeepEqual(cnt.calls, []int{1}) || !reflect.DeepEqual(got.Features, want.Features) {
			t.Errorf("test %d: recomputed %v, features %v; want shard 1 recomputed and %v", i, cnt.calls, got.Features, want.Features)
		}
		if msg := log.String(); !strings.Contains(msg, test.want) || !strings.Contains(msg, "recomputing") {
			t.Errorf("test %d: log %q, want it to say %q and recomputing", i, msg, test.want)
		}
		// Without a way to compute (Load), the same shard is an error naming it.
		test.spoil(c)
		if _, err := Load(c.Dir, nil); err == nil || !strings.Contains(err.Error(), "shard shard-000001 is not usable") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: Load: got %v", i, err)
		}
	}
}

func TestNonFiniteComputed(t *testing.T) {
	c, _ := Open(t.TempDir(), Key{Model: "m"}, []Shard{{ID: "a", Items: 3}}, nil)
	_, err := c.Extract(1, func(int) (*Data, error) {
		return &Data{Features: []float32{0, 1, float32(math.NaN())}, Labels: []int32{0, 0, 0}}, nil
	}, nil)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "shard a item 2") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "a.npy")); err == nil {
		t.Error("non-finite features were written")
	}
	// A computed shard of the wrong size is refused too.
	_, err = c.Extract(1, func(int) (*Data, error) { return &Data{Features: []float32{0}, Labels: []int32{0}}, nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "want 3 items") {
		t.Fatalf("got %v", err)
	}
}

// TestStaleTemps: temporaries of killed runs are removed when the cache is opened;
// a young one, which a live writer may be about to rename, is kept. (Issue 20:
// "temp files of killed runs are never cleaned up".)
func TestStaleTemps(t *testing.T) {
	root := t.TempDir()
	shards := []Shard{{ID: "a", Items: 1}}
	c, err := Open(root, testKey, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(c.Dir, ".a.npy.tmp-123")
	oldKey := filepath.Join(c.Dir, ".key.json.tmp-9")
	young := filepath.Join(c.Dir, ".a.json.tmp-456")
	other := filepath.Join(c.Dir, ".notes") // not a temporary of ours
	for _, p := range []string{old, oldKey, young, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-StaleTemp - time.Minute)
	for _, p := range []string{old, oldKey, other} {
		os.Chtimes(p, past, past)
	}
	var log bytes.Buffer
	if _, err := Open(root, testKey, shards, &log); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{old, oldKey} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	for _, p := range []string{young, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if !strings.Contains(log.String(), "removed 2 temporary files left by killed runs") {
		t.Errorf("log %q", log.String())
	}
}

// TestLoad reads a complete cache without a model, and names what is missing.
func TestLoad(t *testing.T) {
	files := writeSources(t, 6)
	shards := shardsOf(6, 4, files)
	c, _ := Open(t.TempDir(), testKey, shards, nil)
	if _, err := c.Fill(2, func(s int) bool { return s == 0 }, (&counter{n: 6, size: 4, failAt: 100}).compute, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(c.Dir, nil); err == nil || !strings.Contains(err.Error(), "shard shard-000001 is not usable: not computed yet") {
		t.Fatalf("incomplete cache: got %v", err)
	}
	want, err := c.Extract(2, (&counter{n: 6, size: 4, failAt: 100}).compute, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(c.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dim != 2 || got.N != 6 || !reflect.DeepEqual(got.Features, want.Features) || !reflect.DeepEqual(got.Labels, want.Labels) || !reflect.DeepEqual(got.Skipped, want.Skipped) {
		t.Errorf("Load: %+v, want %+v", got, want)
	}
	if _, err := Load(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "is not a feature cache directory") {
		t.Errorf("not a cache: got %v", err)
	}
}

// TestKeyOnce: key.json is created once; one describing other features is an error.
func TestKeyOnce(t *testing.T) {
	root := t.TempDir()
	shards := []Shard{{ID: "a", Items: 1}}
	c, _ := Open(root, testKey, shards, nil)
	p := filepath.Join(c.Dir, "key.json")
	st, _ := os.Stat(p)
	past := st.ModTime().Add(-time.Hour)
	os.Chtimes(p, past, past)
	if _, err := Open(root, testKey, shards, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); !st.ModTime().Equal(past) {
		t.Error("key.json was rewritten")
	}
	os.WriteFile(p, []byte(`{"format":2}`), 0o644)
	if _, err := Open(root, testKey, shards, nil); err == nil || !strings.Contains(err.Error(), "describes other features") {
		t.Errorf("got %v", err)
	}
	if _, err := Open(root, testKey, []Shard{{ID: "a"}, {ID: "a"}}, nil); err == nil || !strings.Contains(err.Error(), `repeated ID "a"`) {
		t.Errorf("got %v", err)
	}
}
