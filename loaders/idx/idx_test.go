package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// encode builds an unsigned-byte idx file of shape with data.
func encode(shape []uint32, data []byte) []byte {
	b := []byte{0, 0, typeUint8, byte(len(shape))}
	for _, d := range shape {
		b = append(b, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReadPlainAndGzip(t *testing.T) {
	dir := t.TempDir()
	images := encode([]uint32{2, 2, 3}, []byte{0, 255, 51, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	labels := encode([]uint32{2}, []byte{7, 3})
	for i, test := range []struct {
		name string
		data []byte
	}{{"im", images}, {"im.gz", gz(images)}, {"lab", labels}, {"lab.gz", gz(labels)}} {
		p := filepath.Join(dir, test.name)
		if err := os.WriteFile(p, test.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(test.name, "im") {
			im, err := ReadImages(p)
			if err != nil {
				t.Fatalf("test %d: %v", i, err)
			}
			if im.N != 2 || im.Rows != 2 || im.Cols != 3 || im.Pix[11] != 9 {
				t.Errorf("test %d: got %d x %d x %d, last pixel %d want 2 x 2 x 3, 9", i, im.N, im.Rows, im.Cols, im.Pix[11])
			}
			if f := im.Float32(); f[1] != 1 || f[2] != 0.2 {
				t.Errorf("test %d: got scaled pixels %v want 1, 0.2", i, f[1:3])
			}
			if _, err := ReadLabels(p); err == nil || !strings.Contains(err.Error(), "is not [N]") {
				t.Errorf("test %d: images as labels: got %v", i, err)
			}
		} else {
			y, err := ReadLabels(p)
			if err != nil || !slices.Equal(y, []int{7, 3}) {
				t.Errorf("test %d: got %v, %v want [7 3]", i, y, err)
			}
		}
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := encode([]uint32{3}, []byte{1, 2, 3})
	truncGz := gz(good)
	for i, test := range []struct {
		data []byte
		want string
	}{
		{nil, "header"},
		{[]byte{1, 0, 8, 1}, "bad magic"},
		{[]byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "element type 0x0d"},
		{[]byte{0, 0, 8, 0}, "0 dimensions"},
		{[]byte{0, 0, 8, 2, 0, 0}, "dimensions"},
		{encode([]uint32{4}, []byte{1, 2, 3}), "needs 4 bytes, file has 3"},
		{encode([]uint32{2}, []byte{1, 2, 3}), "more data"},
		{encode([]uint32{1 << 31, 1 << 31}, nil), "too large"},
		{truncGz[:len(truncGz)-4], "unexpected EOF"},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, test.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(p)
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("test %d: got %v want an error naming the file with %q", i, err, test.want)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "idx: ") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestFashionMNIST(t *testing.T) {
	dir := testfix.FashionMNIST(t)
	im, err := ReadImages(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := ReadLabels(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	count := make([]int, 10)
	for _, v := range y {
		count[v%10]++
	}
	if im.N != 10000 || im.Rows != 28 || im.Cols != 28 || len(y) != 10000 || slices.Max(y) != 9 || count[0] != 1000 {
		t.Errorf("got %d images of %dx%d, %d labels up to %d, %d of class 0; want 10000 28x28, 10000 up to 9, 1000", im.N, im.Rows, im.Cols, len(y), slices.Max(y), count[0])
	}
}

// FuzzIdx feeds arbitrary bytes to Decode and the gzip path: no panic, and a decoded
// array always has as many elements as its shape declares.
func FuzzIdx(f *testing.F) {
	f.Add(encode([]uint32{2, 2}, []byte{1, 2, 3, 4}))
	f.Add(gz(encode([]uint32{1}, []byte{9})))
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dec := range []func([]byte) (*Array, error){
			func(b []byte) (*Array, error) { return Decode(bytes.NewReader(b)) },
			func(b []byte) (*Array, error) { return decodeMaybeGzip(bufioReader(b)) },
		} {
			a, err := dec(b)
			if err != nil {
				continue
			}
			n := 1
			for _, d := range a.Shape {
				n *= d
			}
			if n != len(a.Data) {
				t.Fatalf("shape %v but %d elements", a.Shape, len(a.Data))
			}
		}
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
