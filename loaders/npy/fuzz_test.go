package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// fuzzSeeds adds small valid .npy files of several dtypes and shapes, then the
// small fixture arrays when the shared fixtures are available (never copied into
// the repository: they are read at setup).
func fuzzSeeds(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x93NUMPY\x01\x00"))
	for _, s := range []struct {
		dtype string
		shape []int
		data  []byte
	}{
		{"<f4", []int{}, []byte{0, 0, 0x80, 0x3f}},
		{"<f4", []int{2, 2}, make([]byte, 16)},
		{"<f4", []int{0, 4}, nil},
		{"<f2", []int{3}, []byte{0, 0x3c, 0, 0xc0, 0xff, 0x7b}},
		{"<f8", []int{1}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"<i8", []int{2}, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"<i4", []int{1, 2}, []byte{0x9e, 0xc0, 0, 0, 0x9f, 0xc0, 0, 0}},
		{"|u1", []int{3}, []byte{1, 2, 255}},
		{"|i1", []int{2}, []byte{0x80, 0x7f}},
		{"<u2", []int{1}, []byte{0xff, 0xff}},
		{"|b1", []int{1}, []byte{1}},
	} {
		f.Add(append(EncodeHeader(s.dtype, s.shape), s.data...))
	}
	if dir := testfix.SharedDir(); dir != "" {
		for _, rel := range []string{
			"fixtures/clip-tiny-a/golden/tokens.npy",
			"fixtures/clip-tiny-a/golden/logits_per_image.npy",
			"fixtures/clip-tiny-a/openai/logit_scale.npy",
			"fixtures/clip-tiny-a/openai/ln_final.bias.npy",
		} {
			if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel))); err == nil && len(b) <= 16<<10 {
				f.Add(b)
			}
		}
	}
}

// checkFuzzRead checks what the readers promise about arbitrary bytes: an error
// names the file; a result holds no more elements than the file's data can, and as
// many as its shape says.
func checkFuzzRead(t *testing.T, path string, raw []byte, shape []int, n int, err error) bool {
	t.Helper()
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file %s: %v", path, err)
		}
		return false
	}
	h, herr := ReadHeader(bytes.NewReader(raw), int64(len(raw)), path)
	if herr != nil {
		t.Fatalf("read succeeded but ReadHeader fails: %v", herr)
	}
	isz, _ := itemSize(h.Dtype)
	if int64(n)*int64(isz) > int64(len(raw))-h.DataOffset {
		t.Fatalf("%d elements of %s from a file of %d bytes", n, h.Dtype, len(raw))
	}
	want := 1
	for _, d := range shape {
		want *= d
	}
	if want != n {
		t.Fatalf("shape %v but %d elements", shape, n)
	}
	return true
}

// fuzzName names the fuzzed stream in error messages.
const fuzzName = "fuzz.npy"

func FuzzReadFloat32(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := fuzzName
		a, err := ReadFloat32At(bytes.NewReader(raw), int64(len(raw)), p)
		if a == nil && err == nil {
			t.Fatal("nil array and nil error")
		}
		var shape []int
		var n int
		if a != nil {
			shape, n = a.Shape, len(a.Data)
		}
		if !checkFuzzRead(t, p, raw, shape, n, err) {
			return
		}
		// A valid array round-trips through WriteFloat32To (the encoder of
		// WriteFloat32, without its fsync), NaN payloads included.
		var buf bytes.Buffer
		if err := WriteFloat32To(&buf, a.Shape, a.Data); err != nil {
			t.Fatalf("WriteFloat32To of shape %v: %v", a.Shape, err)
		}
		b, err := ReadFloat32At(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "again.npy")
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Shape) != len(a.Shape) || len(b.Data) != len(a.Data) {
			t.Fatalf("round trip: shape %v (%d) became %v (%d)", a.Shape, len(a.Data), b.Shape, len(b.Data))
		}
		for i := range a.Shape {
			if a.Shape[i] != b.Shape[i] {
				t.Fatalf("round trip: shape %v became %v", a.Shape, b.Shape)
			}
		}
		for i := range a.Data {
			if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
				t.Fatalf("round trip: element %d %v became %v", i, a.Data[i], b.Data[i])
			}
		}
	})
}

func FuzzReadInt64(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := fuzzName
		a, err := ReadInt64At(bytes.NewReader(raw), int64(len(raw)), p)
		if a == nil && err == nil {
			t.Fatal("nil array and nil error")
		}
		var shape []int
		var n int
		if a != nil {
			shape, n = a.Shape, len(a.Data)
		}
		if !checkFuzzRead(t, p, raw, shape, n, err) {
			return
		}
		// The same bytes WriteInt64 writes.
		enc := EncodeHeader("<i8", a.Shape)
		for _, v := range a.Data {
			enc = binary.LittleEndian.AppendUint64(enc, uint64(v))
		}
		b, err := ReadInt64At(bytes.NewReader(enc), int64(len(enc)), "again.npy")
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Data) != len(a.Data) {
			t.Fatalf("round trip: %d elements became %d", len(a.Data), len(b.Data))
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("round trip: element %d %v became %v", i, a.Data[i], b.Data[i])
			}
		}
	})
}
