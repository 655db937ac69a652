package graph

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BFloat16 is the dtype of bfloat16 tensors: their data is a []uint16 holding the
// upper 16 bits of the float32 values, rounded to nearest even (see ToBF16). The
// IEEE half-precision weights of an FP16 graph (ToFP16) have the same dtype: the
// graph's precision says which format the bits are in.
var BFloat16 = tensor.Uint16

// bf16Round returns the bfloat16 nearest to f (ties to even), as the AVX512-BF16
// conversion instructions and oneDNN compute it: NaN stays a quiet NaN, and
// subnormal inputs, which the instructions treat as zero, become signed zeros.
func bf16Round(f float32) uint16 {
	u := math.Float32bits(f)
	switch {
	case u&0x7f800000 == 0: // zero or subnormal
		return uint16(u>>16) & 0x8000
	case u&0x7fffffff > 0x7f800000: // NaN
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// bf16Float widens a bfloat16 to float32 (exact).
func bf16Float(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// toBF16Fast and fromBF16Fast are toBF16 and fromBF16 in AVX512-BF16 (bf16_dnnl.c),
// set where the build and the CPU have them; nil otherwise.
var (
	toBF16Fast   func(dst []uint16, src []float32)
	fromBF16Fast func(dst []float32, src []uint16)
)

// fastConv is the length from which the vector conversions beat the Go loops (a cgo
// call costs ~100 ns).
const fastConv = 256

// toBF16 rounds src into dst (same length).
func toBF16(dst []uint16, src []float32) {
	if toBF16Fast != nil && len(src) >= fastConv {
		toBF16Fast(dst[:len(src)], src)
		return
	}
	for i, v := range src {
		dst[i] = bf16Round(v)
	}
}

// fromBF16 widens src into dst (same length).
func fromBF16(dst []float32, src []uint16) {
	if fromBF16Fast != nil && len(src) >= fastConv {
		fromBF16Fast(dst[:len(src)], src)
		return
	}
	for i, h := range src {
		dst[i] = bf16Float(h)
	}
}

// RoundBF16 rounds every value of x to the nearest bfloat16, in place: what storing
// x in bfloat16 and reading it back gives (how the fallback GEMM rounds a float32
// operand, and how references for bf16 results are built).
func RoundBF16(x []float32) {
	for i, v := range x {
		x[i] = bf16Float(bf16Round(v))
	}
}

// ToBF16 converts the float32 tensor w, in place, into a BFloat16 tensor of the same
// shape, and returns how many bytes its data shrank by. A tensor already in
// bfloat16 is left alone (0). The float32 data is no longer referenced by w
// afterwards, so it is freed once nothing else holds it. The bfloat16 data lives
// outside the Go heap (see allocBF16) and is released when w becomes unreachable:
// it must not be used through anything but w (a slice of w.Data() kept after w is
// dropped would dangle).
func ToBF16(w *tensor.Dense) (int, error) { return toHalf(w, bf16Round) }

// toHalf converts w in place to 16-bit values, each rounded by round (see ToBF16).
func toHalf(w *tensor.Dense, round func(float32) uint16) (int, error) {
	if w.Dtype() == BFloat16 {
		return 0, nil
	}
	x, s, err := f32(w)
	if err != nil {
		return 0, err
	}
	h, free := halve(x, round)
	*w = *tensor.New(tensor.WithShape(s.Clone()...), tensor.WithBacking(h))
	runtime.AddCleanup(w, func(free func()) { free() }, free)
	return 2 * len(h), nil
}

// halve returns x rounded by round into 16-bit values outside the Go heap, and the
// function that releases them.
func halve(x []float32, round func(float32) uint16) ([]uint16, func()) {
	h, free := allocBF16(len(x))
	for i, v := range x {
		h[i] = round(v)
	}
	return h, free
}

// Halve returns the 16-bit form of x in precision p (BF16 or FP16), the values
// ToBF16 or ToFP16 would give, outside the Go heap as they keep them, and the
// function that releases them (never to be called while h is in use): how a loader
// converts each weight as it reads it, so that a 16-bit model is never whole in
// float32 (layers.Tensor.SetHalf).
func Halve(p Precision, x []float32) (h []uint16, free func(), err error) {
	switch p {
	case BF16:
		h, free = halve(x, bf16Round)
	case FP16:
		h, free = halve(x, fp16Round)
	default:
		return nil, nil, fmt.Errorf("graph: %v weights are not 16-bit", p)
	}
	return h, free, nil
}

// ZeroFloats returns n float32 zeros that take no memory until written (an
// anonymous mapping, where the system has them), and the function that unmaps them:
// a stand-in for a model's weights when only its structure is wanted.
func ZeroFloats(n int) ([]float32, func()) {
	h, free := allocBF16(2 * n)
	if n == 0 {
		return nil, free
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&h[0])), n), free
}

// WidenBF16 writes the float32 values of the bfloat16s src into dst (same length):
// how host code reads a table stored in bfloat16 (the token embedding of a BF16
// model).
func WidenBF16(dst []float32, src []uint16) { fromBF16(dst, src) }

// weightType is the gorgonia type of a weight operand of dims dimensions: a
// float32 or BFloat16 tensor (a type variable; the graph's precision decides).
func weightType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('w')} }

// bf16Data returns the bfloat16 data of a value passed to Do, or nil when it is not
// a bfloat16 tensor.
func bf16Data(v G.Value) []uint16 {
	if t, ok := v.(*tensor.Dense); ok && t.Dtype() == BFloat16 && !t.RequiresIterator() {
		return t.Data().([]uint16)
	}
	return nil
}

// act is an activation as an op receives it: float32 (F) or bfloat16 (H) rows.
type act struct {
	F     []float32
	H     []uint16
	Shape tensor.Shape
}

// activation reads an input of Do that may be stored in either precision.
func activation(v G.Value) (act, error) {
	if h := bf16Data(v); h != nil {
		return act{H: h, Shape: v.Shape()}, nil
	}
	f, s, err := f32(v)
	return act{F: f, Shape: s}, err
}

// kind says whether a is absent, float32 or bfloat16 (as a GEMM's residual).
func (a act) kind() resKind {
	switch {
	case a.H != nil:
		return resBF16
	case a.F != nil:
		return resF32
	}
	return noRes
}

// rows returns rows [lo,hi) of a [N, width] activation.
func (a act) rows(lo, hi, width int) act {
	if a.H != nil {
		return act{H: a.H[lo*width : hi*width]}
	}
	return act{F: a.F[lo*width : hi*width]}
}

// store writes the float32 values y into a, rounding them when a is bfloat16.
func (a act) store(y []float32) {
	if a.H != nil {
		toBF16(a.H, y)
	} else {
		copy(a.F, y)
	}
}

// widen returns a as float32: its own data, or the bfloat16 values widened into buf
// (grown as needed).
func (a act) widen(buf *[]float32) []float32 {
	if a.H == nil {
		return a.F
	}
	if cap(*buf) < len(a.H) {
		*buf = make([]float32, len(a.H))
	}
	f := (*buf)[:len(a.H)]
	fromBF16(f, a.H)
	return f
}

// halves reinterprets n bfloat16 values' worth of float32 storage (arena slots are
// float32) as []uint16.
func halves(f []float32, n int) []uint16 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&f[0])), n)
}
