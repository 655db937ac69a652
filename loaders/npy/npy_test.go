package npy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, test := range []struct {
		shape []int
		data  []float32
	}{
		{[]int{}, []float32{3}},
		{[]int{3}, []float32{1, 2, 3}},
		{[]int{2, 3}, []float32{1, 2, 3, 4, 5, -6}},
		{[]int{0, 4}, []float32{}},
	} {
		p := filepath.Join(dir, "a.npy")
		if err := WriteFloat32(p, test.shape, test.data); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		got, err := ReadFloat32(p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if len(got.Shape) != len(test.shape) || (len(test.shape) > 0 && !reflect.DeepEqual(got.Shape, test.shape)) || !reflect.DeepEqual(got.Data, test.data) {
			t.Errorf("test %d: got %v %v want %v %v", i, got.Shape, got.Data, test.shape, test.data)
		}
	}
	p := filepath.Join(dir, "i.npy")
	if err := WriteInt32(p, []int{2, 2}, []int32{1, -2, 3, 49407}); err != nil {
		t.Fatal(err)
	}
	gi, err := ReadInt64(p)
	if err != nil || !reflect.DeepEqual(gi.Data, []int64{1, -2, 3, 49407}) {
		t.Fatalf("int round trip: got %v, %v", gi, err)
	}
}

func TestFixture(t *testing.T) {
	t.Parallel()
	p := testfix.Shared(t, "fixtures/clip-tiny-a/golden/tokens.npy")
	a, err := ReadInt64(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Shape, []int{13, 77}) || a.Data[0] != 49406 {
		t.Fatalf("tokens: shape %v first %d", a.Shape, a.Data[0])
	}
	f, err := ReadFloat32(testfix.Shared(t, "fixtures/clip-tiny-a/golden/pixels.npy"))
	if err != nil || !reflect.DeepEqual(f.Shape, []int{5, 3, 64, 64}) {
		t.Fatalf("pixels: %v %v", f, err)
	}
}

func TestFloat16(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x3555, 0.33325195}, {0x0001, 5.9604645e-08}, {0x7bff, 65504}, {0, 0}} {
		if got := Float16ToFloat32(test.h); got != test.want {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.npy")
	if err := WriteFloat32(good, []int{4, 4}, make([]float32, 16)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	huge := append([]byte(nil), raw...)
	huge[6], huge[8], huge[9] = 2, 0xff, 0xff // version 2, 4-byte header length
	for i, test := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.npy", nil, "too short"},
		{"magic.npy", []byte("PK\x03\x04 not npy at all"), "bad magic"},
		{"trunc.npy", raw[:len(raw)-5], "truncated"},
		{"hdr.npy", raw[:40], "exceeds file size"},
		{"huge.npy", huge, "exceeds file size"},
	} {
		p := filepath.Join(dir, test.name)
		os.WriteFile(p, test.data, 0o644)
		_, err := ReadFloat32(p)
		if err == nil || !strings.Contains(err.Error(), test.name) || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want an error naming %s and saying %q", i, err, test.name, test.want)
		}
	}
}
