package bomb

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"testing"
)

// TestInflates checks that each stream inflates to exactly prefix, the zeros and
// suffix, with valid checksums, and stays small.
func TestInflates(t *testing.T) {
	for i, test := range []struct {
		prefix, suffix []byte
		zeros          int64
	}{
		{nil, nil, 0},
		{[]byte("head"), []byte("tail"), 10},
		{[]byte("head"), []byte("tail"), 3*chunk + 12345},
		{bytes.Repeat([]byte{7}, 40000), nil, 64 * chunk},
	} {
		want := append(append(bytes.Clone(test.prefix), make([]byte, test.zeros)...), test.suffix...)
		gz, err := gzip.NewReader(bytes.NewReader(Gzip(test.prefix, test.zeros, test.suffix)))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		zl, err := zlib.NewReader(bytes.NewReader(Zlib(test.prefix, test.zeros, test.suffix)))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		raw := Deflate(test.prefix, test.zeros, test.suffix)
		for j, r := range []io.Reader{flate.NewReader(bytes.NewReader(raw)), gz, zl} {
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("test %d, stream %d: %v, %d bytes want %d", i, j, err, len(got), len(want))
			}
		}
		if n := int64(len(raw)); n > test.zeros/500+int64(len(test.prefix))+1024 {
			t.Errorf("test %d: %d compressed bytes for %d zeros", i, n, test.zeros)
		}
	}
}
