package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets for the dataset readers that parse untrusted files: CIFAR binary
// batches, webdataset tar shards and parquet files. Each writes the fuzzed bytes
// at the file's place in a folder made once per fuzz process (inputs run one at a
// time in a process), opens the dataset and reads every item: nothing may panic,
// errors must name the file, and items may not be larger than the file.

// fuzzOpen opens spec and reads every item, checking the promises above. file is
// the fuzzed file, size its length.
func fuzzOpen(t *testing.T, spec, split string, opts Options, file string, size int) {
	t.Helper()
	ds, err := Open(spec, split, opts)
	if err != nil {
		if !strings.Contains(err.Error(), file) {
			t.Fatalf("error does not name %s: %v", file, err)
		}
		return
	}
	if ds.Len() > size {
		t.Fatalf("%d items from a file of %d bytes", ds.Len(), size)
	}
	for i := 0; i < ds.Len(); i++ {
		it, err := ds.Item(i)
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("item %d: error does not name %s: %v", i, file, err)
			}
			continue
		}
		if it.Label < 0 || it.Label >= len(ds.ClassNames()) {
			t.Fatalf("item %d: label %d outside [0, %d)", i, it.Label, len(ds.ClassNames()))
		}
		if len(it.Encoded) > size {
			t.Fatalf("item %d: %d encoded bytes from a file of %d", i, len(it.Encoded), size)
		}
		if (it.Image == nil) == (it.Encoded == nil) {
			t.Fatalf("item %d: want exactly one of Image and Encoded", i)
		}
	}
}

// FuzzCIFAR fuzzes data_batch_1.bin of a CIFAR-10 train split whose other four
// batches hold one valid record each.
func FuzzCIFAR(f *testing.F) {
	f.Add([]byte{})
	f.Add(cifarRecord(7, 3))
	f.Add(append(cifarRecord(1, 0), cifarRecord(2, 9)...))
	f.Add(cifarRecord(7, 10))
	f.Add(cifarRecord(7, 3)[:3000])
	dir := f.TempDir()
	for b := 2; b <= 5; b++ {
		writeFile(f, dir, fmt.Sprintf("data_batch_%d.bin", b), cifarRecord(uint8(b), uint8(b)))
	}
	file := filepath.Join(dir, "data_batch_1.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzOpen(t, "cifar10:"+dir, "train", Options{}, file, len(data)+4*(cifarPixels+1))
	})
}

// FuzzWDS fuzzes DIR/test/0.tar of a webdataset with three class names.
func FuzzWDS(f *testing.F) {
	f.Add([]byte{})
	f.Add(tarBytes(f, "a.png", string(pngBytes(f, 1)), "a.cls", "0"))
	f.Add(tarBytes(f, "s20.cls", "2\n", "s20.png", "xx", "s21.json", "{}",
		"sub/s21.png", "yy", "sub/s21.cls", " 1 ", "sub/s21.jpg", "z"))
	f.Add(tarBytes(f, "a.png", "x", "a.cls", "1", "a.cls", "1"))
	f.Add(tarBytes(f, "a.png", "x", "a.cls", "7"))
	f.Add(tarBytes(f, "a.cls", "0"))
	dir := f.TempDir()
	writeFile(f, dir, "classnames.txt", []byte("cat\ndog\nbird\n"))
	file := writeFile(f, dir, "test/0.tar", nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzOpen(t, "wds:"+dir, "test", Options{}, file, len(data))
		// Streaming the shard finds the samples Open does, or fails naming it.
		ds, openErr := Open("wds:"+dir, "test", Options{})
		var streamed []Item
		err := StreamWDSShard(file, func(it Item) error {
			streamed = append(streamed, it)
			return nil
		})
		switch {
		case err != nil && !strings.Contains(err.Error(), file):
			t.Fatalf("stream error does not name %s: %v", file, err)
		case openErr == nil && err != nil:
			t.Fatalf("Open read the shard but streaming failed: %v", err)
		case openErr == nil && len(streamed) != ds.Len():
			t.Fatalf("streamed %d samples, Open found %d", len(streamed), ds.Len())
		}
	})
}

// FuzzParquet fuzzes a Hugging Face style parquet file, seeded with small valid
// ones written by parquet-go.
func FuzzParquet(f *testing.F) {
	seeds := f.TempDir()
	meta := hfMeta(f, map[string]any{"image": imageFeature, "label": classLabel("a", "b", "c")})
	for i, write := range []func(string) string{
		func(p string) string { return writeParquet(f, seeds, p, meta, hfRows(f, 0, 0, 1, 2)) },
		func(p string) string { return writeParquet(f, seeds, p, "", hfRows(f, 9, 1)) },
		func(p string) string {
			return writeParquet(f, seeds, p, meta, []struct {
				Image []byte `parquet:"image"`
				Label int32  `parquet:"label"`
			}{{[]byte("x"), 0}, {nil, 2}, {[]byte("yz"), 1}})
		},
	} {
		b, err := os.ReadFile(write(fmt.Sprintf("seed%d.parquet", i)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("PAR1PAR1"))
	dir := f.TempDir()
	file := filepath.Join(dir, "train.parquet")
	opts := Options{ClassNames: []string{"a", "b", "c"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// Labels beyond the row count cannot be: a row takes at least a bit.
		fuzzOpen(t, "parquet:"+file, "train", opts, file, 8*len(data))
	})
}
