package weights

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// maxSafetensorsHeader bounds the JSON header, as the safetensors format itself does
// (100 MB), so that a corrupt length cannot make us allocate gigabytes.
const maxSafetensorsHeader = 100 << 20

// safetensorsDtypes maps safetensors dtype names to their size in bytes and the NumPy
// type string npy.DecodeFloat32 understands ("bf16" is handled here).
var safetensorsDtypes = map[string]struct {
	size  int
	numpy string
}{
	"F64": {8, "<f8"}, "F32": {4, "<f4"}, "F16": {2, "<f2"}, "BF16": {2, "bf16"},
	"I64": {8, "<i8"}, "I32": {4, "<i4"}, "I16": {2, "<i2"}, "I8": {1, "|i1"},
	"U64": {8, "<u8"}, "U32": {4, "<u4"}, "U16": {2, "<u2"}, "U8": {1, "|u1"}, "BOOL": {1, "|b1"},
}

// ReadSafetensors reads the tensors of a .safetensors file as float32: F32 bit for
// bit, F16 and BF16 widened exactly, F64 and integer types rounded. The header is
// checked whole before any data is read: malformed files (a header longer than the
// file, duplicate keys, offsets outside the data area or disagreeing with dtype and
// shape, tensors that overlap or leave bytes of the data area unclaimed, as the
// format forbids) and, when want is not nil, files whose keys or shapes differ from
// it are refused with an error naming the file and the keys. Every allocation is
// thus bounded by the file's size.
func ReadSafetensors(path string, want *Expect) (map[string]*Tensor, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSafetensors(f, size, path, want)
}

// openSized opens the regular file at path for random access and returns its size,
// so that readers can check every length they are told against it before
// allocating. A FIFO or device is refused before it is read.
func openSized(path string) (*os.File, int64, error) {
	f, st, err := regfile.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("loaders: weights: %w", err)
	}
	return f, st.Size(), nil
}

// readShardIndex reads the weight_map ({key: shard file}) of a
// model.safetensors.index.json, refusing duplicate keys.
func readShardIndex(index string) (map[string]string, error) {
	b, err := regfile.ReadFile(index, maxSafetensorsHeader)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("loaders: weights: %s: %v", index, err) }
	top, err := decodeObject(b)
	if err != nil {
		return nil, fail(err)
	}
	raw, ok := top["weight_map"]
	if !ok {
		return nil, fail(fmt.Errorf("no weight_map"))
	}
	wm, err := decodeObject(raw)
	if err != nil {
		return nil, fail(fmt.Errorf("weight_map: %v", err))
	}
	if len(wm) == 0 {
		return nil, fail(fmt.Errorf("empty weight_map"))
	}
	out := make(map[string]string, len(wm))
	for k, v := range wm {
		var f string
		if err := json.Unmarshal(v, &f); err != nil {
			return nil, fail(fmt.Errorf("weight_map: key %s: shard %s is not a file name", k, v))
		}
		out[k] = f
	}
	return out, nil
}

// stEntry is one tensor of a safetensors header.
type stEntry struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// stTensorInfo is a checked header entry: where its bytes lie in the file.
type stTensorInfo struct {
	numpy string // type string for decodeFloat32
	shape []int
	at    int64 // file offset of the first byte
	n     int64 // byte count
}

// stFile is a parsed safetensors header: the tensors by key, and the file they lie in.
type stFile struct {
	r       io.ReaderAt
	name    string
	tensors map[string]stTensorInfo
}

// shapes returns the shape of every tensor the header declares.
func (f *stFile) shapes() map[string][]int {
	out := make(map[string][]int, len(f.tensors))
	for k, t := range f.tensors {
		out[k] = t.shape
	}
	return out
}

// read decodes the tensors want asks for (all of them when want is nil).
func (f *stFile) read(want *Expect) (map[string]*Tensor, error) {
	keys := make([]string, 0, len(f.tensors))
	for k := range f.tensors {
		if want.wants(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make(map[string]*Tensor, len(keys))
	for _, k := range keys {
		t := f.tensors[k]
		buf := make([]byte, t.n)
		if _, err := f.r.ReadAt(buf, t.at); err != nil && !(err == io.EOF && len(buf) == 0) {
			return nil, fmt.Errorf("loaders: weights: %s: key %q: reading data: %v", f.name, k, err)
		}
		data, err := decodeFloat32(t.numpy, buf)
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: key %q: %v", f.name, k, err)
		}
		tt := &Tensor{Shape: t.shape, Data: data}
		if err := want.convert(k, tt); err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: key %q: %w", f.name, k, err)
		}
		out[k] = tt
	}
	return out, nil
}

// readSafetensors parses r (size bytes long), checks it against want and reads it;
// name is used in errors.
func readSafetensors(r io.ReaderAt, size int64, name string, want *Expect) (map[string]*Tensor, error) {
	f, err := parseSafetensors(r, size, name)
	if err != nil {
		return nil, err
	}
	if err := want.check(f.shapes()); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", name, err)
	}
	return f.read(want)
}

// parseSafetensors reads and checks the header of r (size bytes long); name is used
// in errors.
func parseSafetensors(r io.ReaderAt, size int64, name string) (*stFile, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("loaders: weights: %s: "+format, append([]any{name}, args...)...)
	}
	var pre [8]byte
	if size < 8 {
		return nil, fail("too short for a safetensors header (%d bytes)", size)
	}
	if _, err := r.ReadAt(pre[:], 0); err != nil {
		return nil, fail("reading header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > uint64(size-8) {
		return nil, fail("header length %d exceeds file size %d", n, size)
	}
	if n > maxSafetensorsHeader {
		return nil, fail("header length %d exceeds the %d-byte limit", n, maxSafetensorsHeader)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fail("reading header: %v", err)
	}
	raw, err := decodeObject(hdr)
	if err != nil {
		return nil, fail("malformed header: %v", err)
	}
	dataStart := 8 + int64(n)
	dataLen := size - dataStart
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if k != "__metadata__" { // free-form string map; nothing in it changes the tensors
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // deterministic: the first bad key reported is always the same
	f := &stFile{r: r, name: name, tensors: make(map[string]stTensorInfo, len(keys))}
	spans := make([]stSpan, 0, len(keys))
	for _, k := range keys {
		var e stEntry
		fields, err := decodeObject(raw[k])
		if err == nil {
			err = json.Unmarshal(raw[k], &e)
		}
		if err != nil {
			return nil, fail("key %q: malformed entry: %v", k, err)
		}
		for _, field := range []string{"dtype", "shape", "data_offsets"} {
			if _, ok := fields[field]; !ok {
				return nil, fail("key %q: entry has no %q", k, field)
			}
		}
		if len(fields) != 3 {
			return nil, fail("key %q: entry has fields %v; only dtype, shape and data_offsets are defined", k, slices.Sorted(maps.Keys(fields)))
		}
		dt, ok := safetensorsDtypes[e.Dtype]
		if !ok {
			return nil, fail("key %q: unsupported dtype %q", k, e.Dtype)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fail("key %q: data_offsets %v must hold two numbers", k, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return nil, fail("key %q: data_offsets [%d, %d] outside the data area of %d bytes", k, begin, end, dataLen)
		}
		elems := int64(1)
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			// Bounded by dataLen, so no product below can overflow.
			if d < 0 || (d > 0 && elems > dataLen/d) {
				return nil, fail("key %q: shape %v does not fit the %d-byte data area", k, e.Shape, dataLen)
			}
			elems *= d
			shape[i] = int(d)
		}
		if want := elems * int64(dt.size); end-begin != want {
			return nil, fail("key %q: data_offsets [%d, %d] hold %d bytes, shape %v of %s needs %d",
				k, begin, end, end-begin, e.Shape, e.Dtype, want)
		}
		f.tensors[k] = stTensorInfo{numpy: dt.numpy, shape: shape, at: dataStart + begin, n: end - begin}
		spans = append(spans, stSpan{k, begin, end})
	}
	if err := checkSpans(spans, dataLen); err != nil {
		return nil, fail("%v", err)
	}
	return f, nil
}

// stSpan is the byte range [begin, end) of the data area that key claims.
type stSpan struct {
	key        string
	begin, end int64
}

// checkSpans enforces the format's rule that the tensors tile the data area: sorted
// by offset, each starts where the previous one ends and the last ends at dataLen.
// Overlapping tensors would load one layer's bytes as another's (silently wrong
// weights, or one region decoded hundreds of times); unclaimed bytes mean a damaged
// or doctored file.
func checkSpans(spans []stSpan, dataLen int64) error {
	slices.SortFunc(spans, func(a, b stSpan) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end), strings.Compare(a.key, b.key))
	})
	next, prev := int64(0), ""
	for _, s := range spans {
		switch {
		case s.begin < next:
			return fmt.Errorf("key %q: data_offsets [%d, %d] overlap key %q, which ends at %d (tensors must not share bytes)",
				s.key, s.begin, s.end, prev, next)
		case s.begin > next:
			return fmt.Errorf("bytes [%d, %d) of the data area belong to no tensor (before key %q)", next, s.begin, s.key)
		}
		next, prev = s.end, s.key
	}
	if next != dataLen {
		return fmt.Errorf("bytes [%d, %d) of the data area belong to no tensor (after key %q)", next, dataLen, prev)
	}
	return nil
}

// decodeObject decodes one JSON object into its members, refusing duplicate keys
// (encoding/json would keep the last silently, so a second entry could shadow the
// first) and anything but whitespace after it.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string) // an object's keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		out[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return out, nil
}

// decodeFloat32 is npy.DecodeFloat32 plus bfloat16, the upper half of a float32.
func decodeFloat32(dtype string, raw []byte) ([]float32, error) {
	if dtype != "bf16" {
		return npy.DecodeFloat32(dtype, raw)
	}
	out := make([]float32, len(raw)/2)
	for i := range out {
		out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
	}
	return out, nil
}
