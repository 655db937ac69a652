package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

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

// ReadSafetensors reads every tensor of a .safetensors file as float32: F32 bit for
// bit, F16 and BF16 widened exactly, F64 and integer types rounded. Malformed files
// (a header longer than the file, offsets outside the data area or disagreeing with
// dtype and shape) are refused with an error naming the file and the key.
func ReadSafetensors(path string) (map[string]*Tensor, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSafetensors(f, size, path)
}

// openSized opens path for random access and returns its size, so that readers can
// check every length they are told against it before allocating.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("loaders: weights: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("loaders: weights: %w", err)
	}
	return f, st.Size(), nil
}

// stEntry is one tensor of a safetensors header.
type stEntry struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// readSafetensors parses r (size bytes long); name is used in errors.
func readSafetensors(r io.ReaderAt, size int64, name string) (map[string]*Tensor, error) {
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
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
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
	out := make(map[string]*Tensor, len(keys))
	for _, k := range keys {
		var e stEntry
		if err := json.Unmarshal(raw[k], &e); err != nil {
			return nil, fail("key %q: malformed entry: %v", k, err)
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
		buf := make([]byte, end-begin)
		if _, err := r.ReadAt(buf, dataStart+begin); err != nil && !(err == io.EOF && len(buf) == 0) {
			return nil, fail("key %q: reading data: %v", k, err)
		}
		data, err := decodeFloat32(dt.numpy, buf)
		if err != nil {
			return nil, fail("key %q: %v", k, err)
		}
		out[k] = &Tensor{Shape: shape, Data: data}
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
