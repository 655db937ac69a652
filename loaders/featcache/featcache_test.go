package featcache

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

func fill(calls *[][2]int, fail int) ComputeFunc {
	return func(start, end int, out []float32) (map[int]string, error) {
		*calls = append(*calls, [2]int{start, end})
		if start >= fail {
			return nil, errors.New("killed")
		}
		for i := start; i < end; i++ {
			out[(i-start)*2], out[(i-start)*2+1] = float32(i), float32(-i)
		}
		if start == 0 {
			return map[int]string{1: "corrupt image x.jpg"}, nil
		}
		return nil, nil
	}
}

func TestResume(t *testing.T) {
	root := t.TempDir()
	key := Key{Model: "m", Dataset: "fashion-mnist:/x", Split: "test", Preprocess: "p", Kind: "image"}
	c, err := Open(root, key, 4)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][2]int
	// An interruption after two shards: the error comes back and two shards stay.
	if _, err := c.Extract(10, 2, fill(&calls, 8), nil); err == nil {
		t.Fatal("expected the interruption error")
	}
	if !c.Has(0) || !c.Has(1) || c.Has(2) {
		t.Fatalf("shards on disk after interruption: %v %v %v", c.Has(0), c.Has(1), c.Has(2))
	}
	calls = nil
	c2, _ := Open(root, key, 4)
	res, err := c2.Extract(10, 2, fill(&calls, 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(calls, [][2]int{{8, 10}}) {
		t.Fatalf("resume recomputed %v, want only [8 10]", calls)
	}
	if res.Loaded != 2 || res.Computed != 1 {
		t.Fatalf("loaded %d computed %d", res.Loaded, res.Computed)
	}
	if res.Features[2*9] != 9 || res.Features[2*9+1] != -9 || res.Features[2*5] != 5 {
		t.Fatalf("features %v", res.Features)
	}
	if !reflect.DeepEqual(res.SkippedList(), []int{1}) || res.Features[2] != 0 {
		t.Fatalf("skipped %v row %v", res.Skipped, res.Features[2:4])
	}
	// A different key is a different directory.
	c3, _ := Open(root, Key{Model: "other"}, 4)
	if c3.Dir == c.Dir {
		t.Fatal("different keys share a directory")
	}
}

func TestNonFinite(t *testing.T) {
	c, _ := Open(t.TempDir(), Key{Model: "m"}, 4)
	_, err := c.Extract(3, 1, func(start, end int, out []float32) (map[int]string, error) {
		out[2] = float32(math.NaN())
		return nil, nil
	}, nil)
	if !errors.Is(err, ErrNonFinite) || err.Error() == "" || c.Has(0) {
		t.Fatalf("got %v, shard written %v", err, c.Has(0))
	}
}

func TestCorruptShard(t *testing.T) {
	c, _ := Open(t.TempDir(), Key{Model: "m"}, 4)
	os.WriteFile(c.shardPath(0), []byte("garbage"), 0o644)
	_, err := c.Extract(3, 1, func(int, int, []float32) (map[int]string, error) { return nil, nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "shard-000000.npy") {
		t.Fatalf("got %v", err)
	}
}
