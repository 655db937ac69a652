package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/bomb"
	"github.com/gorgoclip/gorgoclip/internal/hang"
	"github.com/gorgoclip/gorgoclip/internal/memlimit"
)

// rawSafetensors lays out header text hdr and a data area of n zero bytes.
func rawSafetensors(hdr string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(b, hdr...), make([]byte, n)...)
}

// TestSafetensorsLayoutRules checks the format's rules that the header alone
// decides: tensors tile the data area (no overlap, no unclaimed bytes) and no key or
// field appears twice. Overlapping offsets loaded one layer's bytes as another's.
func TestSafetensorsLayoutRules(t *testing.T) {
	e := func(off0, off1 int) string {
		return fmt.Sprintf(`{"dtype":"F32","shape":[%d],"data_offsets":[%d,%d]}`, (off1-off0)/4, off0, off1)
	}
	for i, test := range []struct {
		hdr  string
		data int
		want string // "" for a valid file
	}{
		{`{"a":` + e(0, 8) + `,"b":` + e(8, 12) + `}`, 12, ""},
		{`{"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":` + e(0, 4) + `,"b":` + e(4, 8) + `}`, 8, ""},
		{`{"a":` + e(0, 8) + `,"b":` + e(4, 12) + `}`, 12, `key "b": data_offsets [4, 12] overlap key "a", which ends at 8`},
		{`{"a":` + e(0, 8) + `,"b":` + e(0, 8) + `}`, 8, `key "b": data_offsets [0, 8] overlap key "a"`},
		{`{"a":` + e(0, 4) + `,"b":` + e(8, 12) + `}`, 12, `bytes [4, 8) of the data area belong to no tensor (before key "b")`},
		{`{"a":` + e(0, 4) + `}`, 12, `bytes [4, 12) of the data area belong to no tensor (after key "a")`},
		{`{"a":` + e(4, 8) + `}`, 8, `bytes [0, 4) of the data area belong to no tensor (before key "a")`},
		{`{"a":` + e(0, 4) + `,"a":` + e(4, 8) + `}`, 8, `malformed header: duplicate key "a"`},
		{`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, 4, `key "a": malformed entry: duplicate key "dtype"`},
		{`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offset":0}}`, 4, `key "a": entry has fields [data_offsets dtype offset shape]`},
		{`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4, `key "a": entry has no "shape"`},
		{`{"a":` + e(0, 4) + `} {}`, 4, "malformed header: data after the JSON object"},
		{`{"a":` + e(0, 4) + `}   `, 4, ""}, // space padding, as writers align the data
	} {
		b := rawSafetensors(test.hdr, test.data)
		_, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "st", nil)
		switch {
		case test.want == "" && err != nil:
			t.Errorf("test %d: unexpected error %v", i, err)
		case test.want != "" && (err == nil || !strings.Contains(err.Error(), test.want) || !strings.HasPrefix(err.Error(), "loaders: weights: st: ")):
			t.Errorf("test %d: got %v want an error naming st and containing %q", i, err, test.want)
		}
	}
}

// TestLoadRefusesAliasedLayer is the attack that loaded silently wrong weights: one
// layer's tensor pointed at another's bytes in a Hugging Face checkpoint.
func TestLoadRefusesAliasedLayer(t *testing.T) {
	hf := fixture(t, "hf")
	b, err := os.ReadFile(filepath.Join(hf, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["text_model.final_layer_norm.weight"] = hdr["text_model.final_layer_norm.bias"] // same shape, its bytes
	h, _ := json.Marshal(hdr)
	dir := linkDir(t, hf, "model.safetensors")
	out := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), append(out, b[8+n:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "overlap") || !strings.Contains(err.Error(), "text_model.final_layer_norm") {
		t.Fatalf("got %v, want an error naming the overlapping final_layer_norm tensors", err)
	}
}

// TestSafetensorsAliasingMemory: 200 keys aliasing one 16 MiB region decoded that
// region 200 times (3.2 GB); now the overlap is refused from the header.
func TestSafetensorsAliasingMemory(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	const region = 16 << 20
	var hdr strings.Builder
	hdr.WriteString("{")
	for i := range 200 {
		if i > 0 {
			hdr.WriteString(",")
		}
		fmt.Fprintf(&hdr, `"k%03d":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}`, i, region/4, region)
	}
	hdr.WriteString("}")
	b := rawSafetensors(hdr.String(), region)
	_, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "alias.safetensors", nil)
	if err == nil || !strings.Contains(err.Error(), `key "k001": data_offsets [0, 16777216] overlap key "k000"`) {
		t.Fatalf("got %v, want the overlap of k001 and k000 refused", err)
	}
}

// sparseSafetensors writes the fixture's tensors plus "extra", a float32 tensor of
// extraBytes bytes whose data is a hole in a sparse file: the file is as large as
// the tensor claims, but costs no disk.
func sparseSafetensors(t *testing.T, path string, extraBytes int64) {
	t.Helper()
	all, err := ReadSafetensors(filepath.Join(fixture(t, "hf"), "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hdr := map[string]any{}
	var data []byte
	for _, k := range keys {
		raw := f32Bytes(all[k].Data...)
		hdr[k] = map[string]any{"dtype": "F32", "shape": all[k].Shape, "data_offsets": []int64{int64(len(data)), int64(len(data) + len(raw))}}
		data = append(data, raw...)
	}
	hdr["extra"] = map[string]any{"dtype": "F32", "shape": []int64{extraBytes / 4}, "data_offsets": []int64{int64(len(data)), int64(len(data)) + extraBytes}}
	h, _ := json.Marshal(hdr)
	b := append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), data...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(b))+extraBytes); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesUnexpectedKeyUnread: a Hugging Face checkpoint with an unknown
// 3 GiB tensor was decoded whole before the key was found unexpected; now the key
// is refused from the header, with no data read.
func TestLoadRefusesUnexpectedKeyUnread(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	dir := linkDir(t, fixture(t, "hf"), "model.safetensors")
	sparseSafetensors(t, filepath.Join(dir, "model.safetensors"), 3<<30)
	_, err := Load(dir)
	want := "model.safetensors: unexpected 1 keys: extra"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestLoadNpyRefusesUnexpectedKeyUnread is the same for an OpenAI .npy directory: an
// extra 3 GiB .npy file is refused from its header.
func TestLoadNpyRefusesUnexpectedKeyUnread(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	dir := linkDir(t, fixture(t, "openai"))
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (805306368,), }"
	hdr += strings.Repeat(" ", 117-len(hdr)) + "\n" // 10 + 118 bytes: aligned to 64
	path := filepath.Join(dir, "extra.npy")
	if err := os.WriteFile(path, append([]byte("\x93NUMPY\x01\x00v\x00"), hdr...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 128+3<<30); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "unexpected 1 keys: extra") {
		t.Fatalf("got %v, want extra refused as unexpected", err)
	}
}

// TestLoadRefusesFIFO: a FIFO among the .npy files used to block Load forever.
func TestLoadRefusesFIFO(t *testing.T) {
	dir := linkDir(t, fixture(t, "openai"))
	if err := syscall.Mkfifo(filepath.Join(dir, "extra.npy"), 0o644); err != nil {
		t.Skip("no FIFOs here: ", err)
	}
	err := hang.Within(t, 10*time.Second, "Load", func() error { _, err := Load(dir); return err })
	if err == nil || !strings.Contains(err.Error(), "extra.npy is not a regular file (a FIFO)") {
		t.Fatalf("got %v, want the FIFO refused by name", err)
	}
}

// TestLoadShardedRefusesUnexpectedKey: a shard holding a key the config does not
// know is refused from the headers of all shards, naming the index.
func TestLoadShardedRefusesUnexpectedKey(t *testing.T) {
	hf := fixture(t, "hf")
	all, err := ReadSafetensors(filepath.Join(hf, "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := linkDir(t, hf, "model.safetensors")
	all["extra"] = &Tensor{Shape: []int{1}, Data: []float32{1}}
	writeF32Safetensors(t, filepath.Join(dir, "model-00001-of-00001.safetensors"), all)
	wm := map[string]string{}
	for k := range all {
		wm[k] = "model-00001-of-00001.safetensors"
	}
	b, _ := json.Marshal(map[string]any{"weight_map": wm})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "model.safetensors.index.json: unexpected 1 keys: extra") {
		t.Fatalf("got %v, want extra refused naming the index", err)
	}
	// A key listed twice in the index is refused too (JSON would keep the last).
	dup := strings.Replace(string(b), `"weight_map":{`, `"weight_map":{"logit_scale":"x.safetensors",`, 1)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(dir); err == nil || !strings.Contains(err.Error(), `weight_map: duplicate key "logit_scale"`) {
		t.Fatalf("got %v, want the duplicate logit_scale refused", err)
	}
}

// zipRecord is one record of a handcrafted zip: data stored, or raw deflate bytes
// that inflate to size bytes.
type zipRecord struct {
	name    string
	data    []byte
	deflate bool
	size    uint64
}

func zipRecords(tb testing.TB, recs ...zipRecord) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, r := range recs {
		var err error
		if r.deflate {
			var w interface{ Write([]byte) (int, error) }
			w, err = zw.CreateRaw(&zip.FileHeader{Name: r.name, Method: zip.Deflate,
				CompressedSize64: uint64(len(r.data)), UncompressedSize64: r.size})
			if err == nil {
				_, err = w.Write(r.data)
			}
		} else {
			w, cerr := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
			if err = cerr; err == nil {
				_, err = w.Write(r.data)
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// smallExpect is what smallTorchPickle's state dict holds.
var smallExpect = &Expect{Shapes: map[string][]int{"w": {3, 2}, "b": {2}, "logit_scale": {}}}

// TestTorchDeflateBombUnexpected: a deflate bomb under a key the model does not have
// was inflated (1 GiB, then 4 GiB of float32) before the key was found unexpected.
func TestTorchDeflateBombUnexpected(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	const size = 1 << 30
	pkl := torchPickle(
		torchEntry{"w", "0", 6, 0, []int{3, 2}, []int{1, 3}},
		torchEntry{"b", "0", 6, 4, []int{2}, []int{1}},
		torchEntry{"logit_scale", "1", 1, 0, []int{}, []int{}},
		torchEntry{"bomb", "2", size / 4, 0, []int{size / 4}, []int{1}},
	)
	b := zipRecords(t,
		zipRecord{name: "archive/data.pkl", data: pkl},
		zipRecord{name: "archive/data/0", data: smallTorchStorages["0"]},
		zipRecord{name: "archive/data/1", data: smallTorchStorages["1"]},
		zipRecord{name: "archive/data/2", data: bomb.Deflate(nil, size, nil), deflate: true, size: size},
	)
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "bomb.bin", smallExpect)
	if err == nil || !strings.Contains(err.Error(), "bomb.bin: unexpected 1 keys: bomb") {
		t.Fatalf("got %v, want bomb refused as unexpected", err)
	}
	// Without a key filter the bomb is still refused: all records together may not
	// inflate past maxInflation times the file.
	_, err = readTorchZip(bytes.NewReader(b), int64(len(b)), "bomb.bin", nil)
	if err == nil || !strings.Contains(err.Error(), `key "bomb": storage 2: record archive/data/2 would inflate to 1073741824 bytes`) {
		t.Fatalf("got %v, want the inflation refused", err)
	}
}

// TestTorchStrideZeroMemory: one float viewed as 2^30 elements by a stride of 0
// (2^34 in the attack) was gathered into a buffer of that size (4 GiB); a view may now
// address no more elements than its storage holds, even with its shape expected.
func TestTorchStrideZeroMemory(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	const n = 1 << 30
	b := torchZip(t, torchPickle(torchEntry{"w", "0", 1, 0, []int{n}, []int{0}}), map[string][]byte{"0": f32le(1)})
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "stride0.bin", &Expect{Shapes: map[string][]int{"w": {n}}})
	if err == nil || !strings.Contains(err.Error(), `stride0.bin: key "w": shape [1073741824] is too large: it addresses more elements than the 1 of storage 0`) {
		t.Fatalf("got %v, want the stride-0 view refused", err)
	}
}

// TestTorchAliasedViews: hundreds of keys viewing one storage multiplied its memory;
// all views together may hold at most maxViewsPerStorage times their storages.
func TestTorchAliasedViews(t *testing.T) {
	const numel = 1 << 16
	var entries []torchEntry
	for i := range 200 {
		entries = append(entries, torchEntry{fmt.Sprintf("k%03d", i), "0", numel, 0, []int{numel}, []int{1}})
	}
	b := torchZip(t, torchPickle(entries...), map[string][]byte{"0": make([]byte, 4*numel)})
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "alias.bin", nil)
	if err == nil || !strings.Contains(err.Error(), `alias.bin: key "k002": the views read so far hold 196608 elements, more than 2 times the 65536 elements of their storages`) {
		t.Fatalf("got %v, want the third alias refused", err)
	}
}

// TestTorchDuplicateKey: a state dict naming a key twice is refused, not resolved by
// keeping one.
func TestTorchDuplicateKey(t *testing.T) {
	b := torchZip(t, torchPickle(
		torchEntry{"w", "0", 6, 0, []int{6}, []int{1}},
		torchEntry{"w", "1", 1, 0, []int{1}, []int{1}},
	), smallTorchStorages)
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "dup.bin", nil)
	if err == nil || !strings.Contains(err.Error(), `dup.bin: archive/data.pkl: state dict key "w" appears twice`) {
		t.Fatalf("got %v, want the duplicate refused", err)
	}
}

// TestTorchExpectShapes: the pickle's shapes are checked against the expectation
// before any storage is read (here the storages are missing altogether), and only
// wanted keys are returned.
func TestTorchExpectShapes(t *testing.T) {
	b := torchZip(t, smallTorchPickle(), nil)
	want := &Expect{Shapes: map[string][]int{"w": {2, 3}, "b": {2}, "logit_scale": {}, "c": {1}}}
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "x.bin", want)
	if err == nil || !strings.Contains(err.Error(), "x.bin: missing 1 keys: c; mis-shaped 1 keys: w: got [3 2] want [2 3]") {
		t.Fatalf("got %v, want c missing and w mis-shaped", err)
	}
	b = torchZip(t, smallTorchPickle(), smallTorchStorages)
	skip := &Expect{Shapes: map[string][]int{"w": {3, 2}, "logit_scale": {}}, Skip: func(k string) bool { return k == "b" }}
	ts, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "x.bin", skip)
	if err != nil || len(ts) != 2 || ts["b"] != nil {
		t.Fatalf("got %v, %v: want w and logit_scale only", ts, err)
	}
}

// TestTorchPickleObjectBomb: a 16 MB data.pkl of one-byte EMPTY_DICT opcodes made
// the unpickler build 16 million dicts (gigabytes) from a file of 16 MB.
func TestTorchPickleObjectBomb(t *testing.T) {
	if !memlimit.Child(t, memlimit.HostileLimit) {
		return
	}
	pkl := append([]byte("\x80\x02"), bytes.Repeat([]byte("}"), 16<<20)...)
	b := torchZip(t, append(pkl, '.'), nil)
	_, err := readTorchZip(bytes.NewReader(b), int64(len(b)), "dicts.bin", nil)
	if err == nil || !strings.Contains(err.Error(), "dicts.bin: archive/data.pkl: pickle has more than 1048576 opcodes") {
		t.Fatalf("got %v, want the pickle refused", err)
	}
}
