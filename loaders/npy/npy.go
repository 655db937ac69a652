// Package npy reads and writes NumPy .npy files holding float and integer arrays.
//
// Reading parses the header with codeberg.org/sbinet/npyio, after checking the magic,
// the header length and the data size against the file's size, so a truncated or
// malicious file is refused with its name before anything large is allocated. Data is
// converted here: float16 and float64 are accepted where float32 is asked for, any
// integer width where integers are. Writing is atomic (see internal/atomicfile).
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"codeberg.org/sbinet/npyio"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// Float32 is a C-ordered float32 array.
type Float32 struct {
	Shape []int
	Data  []float32
}

// Int64 is a C-ordered integer array widened to int64.
type Int64 struct {
	Shape []int
	Data  []int64
}

// Header is the parsed description of a .npy file.
type Header struct {
	// Dtype is NumPy's type string, such as "<f4".
	Dtype string
	// Shape is the array shape; an empty shape is a scalar.
	Shape []int
	// DataOffset is where the array bytes start.
	DataOffset int64
}

// Elems is the number of elements described by the header.
func (h Header) Elems() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// ReadHeader reads and validates the header of r, whose total size is size bytes.
// name is used in error messages.
func ReadHeader(r io.ReaderAt, size int64, name string) (h Header, err error) {
	var pre [10]byte
	if _, err := r.ReadAt(pre[:], 0); err != nil {
		return h, fmt.Errorf("npy: %s: too short for a .npy header (%d bytes)", name, size)
	}
	if !bytes.Equal(pre[:6], npyio.Magic[:]) {
		return h, fmt.Errorf("npy: %s: not a .npy file (bad magic %q)", name, pre[:6])
	}
	var hdrLen, start int64
	switch pre[6] {
	case 1:
		hdrLen, start = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var b [4]byte
		if _, err := r.ReadAt(b[:], 8); err != nil {
			return h, fmt.Errorf("npy: %s: truncated header", name)
		}
		hdrLen, start = int64(binary.LittleEndian.Uint32(b[:])), 12
	default:
		return h, fmt.Errorf("npy: %s: unsupported format version %d.%d", name, pre[6], pre[7])
	}
	if start+hdrLen > size {
		return h, fmt.Errorf("npy: %s: header length %d exceeds file size %d", name, hdrLen, size)
	}
	hdrBytes := make([]byte, start+hdrLen)
	if _, err := r.ReadAt(hdrBytes, 0); err != nil {
		return h, fmt.Errorf("npy: %s: reading header: %w", name, err)
	}
	if bytes.LastIndexByte(hdrBytes, '\n') < int(start) {
		return h, fmt.Errorf("npy: %s: malformed header (no terminating newline)", name)
	}
	rd, err := parseHeader(hdrBytes)
	if err != nil {
		return h, fmt.Errorf("npy: %s: malformed header: %v", name, err)
	}
	if rd.Header.Descr.Fortran {
		return h, fmt.Errorf("npy: %s: Fortran-ordered arrays are not supported", name)
	}
	h = Header{Dtype: strings.Trim(rd.Header.Descr.Type, "'\""), Shape: append([]int(nil), rd.Header.Descr.Shape...), DataOffset: start + hdrLen}
	n := int64(1)
	for _, d := range h.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/int64(d)) {
			return h, fmt.Errorf("npy: %s: invalid shape %v", name, h.Shape)
		}
		n *= int64(d)
	}
	isz, err := itemSize(h.Dtype)
	if err != nil {
		return h, fmt.Errorf("npy: %s: %v", name, err)
	}
	if n > (size-h.DataOffset)/int64(isz) {
		return h, fmt.Errorf("npy: %s: truncated: shape %v of %s needs more than the %d data bytes the file has", name, h.Shape, h.Dtype, size-h.DataOffset)
	}
	return h, nil
}

// parseHeader lets npyio parse the header dictionary, turning its panics into errors.
func parseHeader(b []byte) (rd *npyio.Reader, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return npyio.NewReader(bytes.NewReader(b))
}

func itemSize(dtype string) (int, error) {
	switch strings.TrimLeft(dtype, "<|=") {
	case "f2", "i2", "u2":
		return 2, nil
	case "f4", "i4", "u4":
		return 4, nil
	case "f8", "i8", "u8":
		return 8, nil
	case "i1", "u1", "b1":
		return 1, nil
	}
	return 0, fmt.Errorf("unsupported dtype %q (little-endian ints and floats only)", dtype)
}

func readRaw(path string) (Header, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, nil, fmt.Errorf("npy: %w", err)
	}
	return readRawAt(f, st.Size(), path)
}

// readRawAt reads the header and the raw array bytes of r, whose size is size
// bytes; name is used in error messages.
func readRawAt(r io.ReaderAt, size int64, name string) (Header, []byte, error) {
	h, err := ReadHeader(r, size, name)
	if err != nil {
		return h, nil, err
	}
	isz, _ := itemSize(h.Dtype)
	buf := make([]byte, h.Elems()*isz)
	if _, err := r.ReadAt(buf, h.DataOffset); err != nil && !(err == io.EOF && len(buf) == 0) {
		return h, nil, fmt.Errorf("npy: %s: reading data: %w", name, err)
	}
	return h, buf, nil
}

// DecodeFloat32 converts raw little-endian array bytes of dtype into float32
// (float16 is widened exactly; float64 and integers are rounded).
func DecodeFloat32(dtype string, raw []byte) ([]float32, error) {
	le := binary.LittleEndian
	switch strings.TrimLeft(dtype, "<|=") {
	case "f4":
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case "f2":
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = Float16ToFloat32(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case "f8":
		out := make([]float32, len(raw)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
		return out, nil
	}
	ints, err := DecodeInt64(dtype, raw)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(ints))
	for i, v := range ints {
		out[i] = float32(v)
	}
	return out, nil
}

// DecodeInt64 converts raw little-endian integer array bytes of dtype into int64.
func DecodeInt64(dtype string, raw []byte) ([]int64, error) {
	le := binary.LittleEndian
	t := strings.TrimLeft(dtype, "<|=")
	isz, err := itemSize(dtype)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(raw)/isz)
	for i := range out {
		b := raw[isz*i:]
		switch t {
		case "i1":
			out[i] = int64(int8(b[0]))
		case "u1", "b1":
			out[i] = int64(b[0])
		case "i2":
			out[i] = int64(int16(le.Uint16(b)))
		case "u2":
			out[i] = int64(le.Uint16(b))
		case "i4":
			out[i] = int64(int32(le.Uint32(b)))
		case "u4":
			out[i] = int64(le.Uint32(b))
		case "i8":
			out[i] = int64(le.Uint64(b))
		case "u8":
			out[i] = int64(le.Uint64(b))
		default:
			return nil, fmt.Errorf("dtype %q is not an integer type", dtype)
		}
	}
	return out, nil
}

// Float16ToFloat32 widens an IEEE 754 half-precision value exactly.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// ReadFloat32 reads a float array (float32, float16 or float64 on disk) as float32.
// Errors name the file.
func ReadFloat32(path string) (*Float32, error) {
	h, raw, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	return float32Array(h, raw, path)
}

// ReadFloat32At is ReadFloat32 for a .npy stream of size bytes in r; name is used in
// error messages.
func ReadFloat32At(r io.ReaderAt, size int64, name string) (*Float32, error) {
	h, raw, err := readRawAt(r, size, name)
	if err != nil {
		return nil, err
	}
	return float32Array(h, raw, name)
}

func float32Array(h Header, raw []byte, name string) (*Float32, error) {
	data, err := DecodeFloat32(h.Dtype, raw)
	if err != nil {
		return nil, fmt.Errorf("npy: %s: %v", name, err)
	}
	return &Float32{Shape: h.Shape, Data: data}, nil
}

// ReadInt64 reads an integer array of any width as int64. Errors name the file.
func ReadInt64(path string) (*Int64, error) {
	h, raw, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	return int64Array(h, raw, path)
}

// ReadInt64At is ReadInt64 for a .npy stream of size bytes in r; name is used in
// error messages.
func ReadInt64At(r io.ReaderAt, size int64, name string) (*Int64, error) {
	h, raw, err := readRawAt(r, size, name)
	if err != nil {
		return nil, err
	}
	return int64Array(h, raw, name)
}

func int64Array(h Header, raw []byte, name string) (*Int64, error) {
	if t := strings.TrimLeft(h.Dtype, "<|="); t[0] == 'f' {
		return nil, fmt.Errorf("npy: %s: dtype %s is not an integer type", name, h.Dtype)
	}
	data, err := DecodeInt64(h.Dtype, raw)
	if err != nil {
		return nil, fmt.Errorf("npy: %s: %v", name, err)
	}
	return &Int64{Shape: h.Shape, Data: data}, nil
}

// EncodeHeader returns a version 1.0 header for dtype and shape, padded to 64 bytes.
func EncodeHeader(dtype string, shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		fmt.Fprintf(&sb, "%d", d)
		if i < len(shape)-1 || len(shape) == 1 {
			sb.WriteString(",")
		}
		if i < len(shape)-1 {
			sb.WriteString(" ")
		}
	}
	sb.WriteString("), }")
	dict := sb.String()
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	out := make([]byte, 0, 10+len(dict))
	out = append(out, npyio.Magic[:]...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(dict)))
	return append(out, dict...)
}

func checkShape(shape []int, n int) error {
	want := 1
	for _, d := range shape {
		want *= d
	}
	if want != n {
		return fmt.Errorf("npy: shape %v holds %d elements, data has %d", shape, want, n)
	}
	return nil
}

// WriteFloat32To writes data with shape as a float32 .npy stream.
func WriteFloat32To(w io.Writer, shape []int, data []float32) error {
	if err := checkShape(shape, len(data)); err != nil {
		return err
	}
	if _, err := w.Write(EncodeHeader("<f4", shape)); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(data)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// WriteFloat32 atomically writes data with shape to path as float32.
func WriteFloat32(path string, shape []int, data []float32) error {
	if err := checkShape(shape, len(data)); err != nil {
		return fmt.Errorf("%v (writing %s)", err, path)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return WriteFloat32To(w, shape, data) })
}

// WriteInt64 atomically writes data with shape to path as int64 ("<i8").
func WriteInt64(path string, shape []int, data []int64) error {
	if err := checkShape(shape, len(data)); err != nil {
		return fmt.Errorf("%v (writing %s)", err, path)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(EncodeHeader("<i8", shape)); err != nil {
			return err
		}
		buf := make([]byte, 0, 8*len(data))
		for _, v := range data {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		}
		_, err := w.Write(buf)
		return err
	})
}

// WriteInt32 atomically writes data with shape to path as int32 ("<i4"), the dtype
// of CLIP token arrays.
func WriteInt32(path string, shape []int, data []int32) error {
	if err := checkShape(shape, len(data)); err != nil {
		return fmt.Errorf("%v (writing %s)", err, path)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(EncodeHeader("<i4", shape)); err != nil {
			return err
		}
		buf := make([]byte, 0, 4*len(data))
		for _, v := range data {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
		}
		_, err := w.Write(buf)
		return err
	})
}
