package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// torchEntry is one tensor of a handcrafted torch.save pickle.
type torchEntry struct {
	key, storage  string
	numel, offset int
	shape, stride []int
}

// torchPickle writes a state dict as torch.save does (protocol 2, the opcodes of
// the fixture's data.pkl): {key: _rebuild_tensor_v2(persistent storage, offset,
// shape, stride, False, OrderedDict())}.
func torchPickle(entries ...torchEntry) []byte {
	var b bytes.Buffer
	str := func(s string) {
		b.WriteByte('X')
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	num := func(v int) {
		b.WriteByte('J')
		binary.Write(&b, binary.LittleEndian, int32(v))
	}
	tuple := func(vs []int) {
		b.WriteByte('(')
		for _, v := range vs {
			num(v)
		}
		b.WriteByte('t')
	}
	b.WriteString("\x80\x02}(")
	for _, e := range entries {
		str(e.key)
		b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n((")
		str("storage")
		b.WriteString("ctorch\nFloatStorage\n")
		str(e.storage)
		str("cpu")
		num(e.numel)
		b.WriteString("tQ")
		num(e.offset)
		tuple(e.shape)
		tuple(e.stride)
		b.WriteString("\x89ccollections\nOrderedDict\n)Rt")
		b.WriteByte('R')
	}
	b.WriteString("u.")
	return b.Bytes()
}

// torchZip packs data.pkl and storage records (stored, as torch.save writes them)
// under archive/.
func torchZip(tb testing.TB, pkl []byte, storages map[string][]byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(data)
	}
	add("data.pkl", pkl)
	for k, v := range storages {
		add("data/"+k, v)
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func f32le(v ...float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// smallTorchPickle is a valid two-tensor state dict over storages "0" (six
// floats) and "1" (one float), the first tensor a transposed view.
func smallTorchPickle() []byte {
	return torchPickle(
		torchEntry{"w", "0", 6, 0, []int{3, 2}, []int{1, 3}},
		torchEntry{"b", "0", 6, 4, []int{2}, []int{1}},
		torchEntry{"logit_scale", "1", 1, 0, []int{}, []int{}},
	)
}

var smallTorchStorages = map[string][]byte{"0": f32le(1, 2, 3, 4, 5, 6), "1": f32le(4.6)}

func TestReadTorchZipHandcrafted(t *testing.T) {
	b := torchZip(t, smallTorchPickle(), smallTorchStorages)
	ts, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "x.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Tensor{
		"w":           {Shape: []int{3, 2}, Data: []float32{1, 4, 2, 5, 3, 6}},
		"b":           {Shape: []int{2}, Data: []float32{5, 6}},
		"logit_scale": {Shape: []int{}, Data: []float32{4.6}},
	}
	if err := sameTensors(ts, want); err != nil {
		t.Fatal(err)
	}
}

// TestReadTorchZipHostile holds inputs that made the reader allocate what a
// length field claimed (gigabytes, or a crash of the process) before the claims
// were checked: pickle strings, bytes and frames longer than data.pkl, and zip
// records whose directory claims more bytes than the archive stores.
func TestReadTorchZipHostile(t *testing.T) {
	pk := smallTorchPickle()
	huge8 := binary.LittleEndian.AppendUint64(nil, 1<<40)
	for i, test := range []struct {
		zip  []byte
		want string
	}{
		{torchZip(t, []byte("\x80\x02X\xf0\xff\xff\xff"), nil), "length 4294967280 exceeds"},
		{torchZip(t, append([]byte("\x80\x02\x8d"), huge8...), nil), "length 1099511627776 exceeds"},
		{torchZip(t, append([]byte("\x80\x02\x8e"), huge8...), nil), "exceeds"},
		{torchZip(t, append([]byte("\x80\x04\x95"), huge8...), nil), "exceeds"},
		{torchZip(t, []byte("\x80\x02}(X\x01\x00\x00\x00kB\xff\xff\xff\x7f"), nil), "exceeds"},
		{torchZip(t, []byte("\x80\x02T\xff\xff\xff\xff"), nil), "negative length"},
		{torchZip(t, []byte("\x80\x02\x8b\x00\x00\x00\x40"), nil), "exceeds"},
		// A storage record whose directory entry claims 4 GB though it stores 24 bytes.
		{claimSize(t, torchZip(t, pk, smallTorchStorages), "archive/data/0", 0xfffffff0), "run past the end"},
		// data.pkl claiming more than the file holds.
		{claimSize(t, torchZip(t, pk, smallTorchStorages), "archive/data.pkl", 50<<20), "run past the end"},
	} {
		_, err := readTorchZip(bytes.NewReader(test.zip), int64(len(test.zip)), "hostile.bin", nil)
		if err == nil || !strings.Contains(err.Error(), "hostile.bin") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v, want an error naming hostile.bin saying %q", i, err, test.want)
		}
	}
}

// claimSize rewrites the central-directory sizes of record name to n, leaving its
// data as it is.
func claimSize(t *testing.T, b []byte, name string, n uint32) []byte {
	t.Helper()
	b = bytes.Clone(b)
	sig := []byte("PK\x01\x02")
	for i := bytes.Index(b, sig); i >= 0; {
		nameLen := int(binary.LittleEndian.Uint16(b[i+28:]))
		if string(b[i+46:i+46+nameLen]) == name {
			binary.LittleEndian.PutUint32(b[i+20:], n) // compressed size
			binary.LittleEndian.PutUint32(b[i+24:], n) // uncompressed size
			return b
		}
		j := bytes.Index(b[i+4:], sig)
		if j < 0 {
			break
		}
		i += 4 + j
	}
	t.Fatalf("no record %s", name)
	return nil
}

// FuzzTorchBin feeds whole files to the pytorch_model.bin reader.
func FuzzTorchBin(f *testing.F) {
	f.Add(torchZip(f, smallTorchPickle(), smallTorchStorages))
	f.Add(torchZip(f, smallTorchPickle(), nil))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	// The fixture's data.pkl (its real keys and opcodes) without its 15 MB of storages.
	if pkl := fixturePickle(f); pkl != nil {
		f.Add(torchZip(f, pkl, nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTorchFuzz(t, b)
	})
}

// FuzzTorchPickle fuzzes data.pkl and one storage record, packed as a valid zip,
// so that mutations reach the unpickler rather than the zip reader.
func FuzzTorchPickle(f *testing.F) {
	f.Add(smallTorchPickle(), smallTorchStorages["0"])
	f.Add([]byte("\x80\x02X\xf0\xff\xff\xff"), []byte{})
	if pkl := fixturePickle(f); pkl != nil {
		f.Add(pkl, f32le(2.5))
	}
	f.Fuzz(func(t *testing.T, pkl, storage []byte) {
		checkTorchFuzz(t, torchZip(t, pkl, map[string][]byte{"0": storage, "1": f32le(1)}))
	})
}

func checkTorchFuzz(t *testing.T, b []byte) {
	ts, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "fuzz.bin", nil)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "loaders: weights: fuzz.bin: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
		return
	}
	for k, v := range ts {
		if elems(v.Shape) != len(v.Data) {
			t.Fatalf("%s: shape %v but %d values", k, v.Shape, len(v.Data))
		}
	}
}

// fixturePickle returns the data.pkl of the fixture's pytorch_model.bin, or nil
// when the shared fixtures are absent.
func fixturePickle(tb testing.TB) []byte {
	shared := testfix.SharedDir()
	if shared == "" {
		return nil
	}
	p := filepath.Join(shared, "fixtures", "clip-tiny-a", "hf-bin", "pytorch_model.bin")
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil
	}
	defer zr.Close()
	for _, r := range zr.File {
		if strings.HasSuffix(r.Name, "/data.pkl") {
			rc, err := r.Open()
			if err != nil {
				tb.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
	}
	return nil
}
