package graph

import (
	"math"

	"gorgonia.org/tensor"
)

// ToFP16 is ToBF16 for an FP16 graph: w becomes IEEE half-precision values (rounded
// to nearest even; beyond +-65504 they become infinities), stored as BFloat16-typed
// 16-bit data.
func ToFP16(w *tensor.Dense) (int, error) { return toHalf(w, fp16Round) }

// fp16Round returns the IEEE binary16 nearest to f (ties to even).
func fp16Round(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	b &= 0x7fffffff
	switch {
	case b > 0x7f800000: // NaN: a quiet one
		return sign | 0x7e00
	case b >= 0x477ff000: // 65520 and up round to infinity
		return sign | 0x7c00
	case b < 0x33000000: // below 2^-25: zero
		return sign
	case b < 0x38800000: // below 2^-14: a subnormal, m * 2^-24
		shift := 126 - b>>23
		m := b&0x7fffff | 0x800000
		r, rem, half := m>>shift, m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || rem == half && r&1 == 1 {
			r++
		}
		return sign | uint16(r)
	}
	b -= 112 << 23 // rebias the exponent from 127 to 15
	b += 0xfff + (b>>13)&1
	return sign | uint16(b>>13)
}

// fp16Float widens an IEEE binary16 to float32 (exact).
func fp16Float(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e, m := uint32(h>>10)&0x1f, uint32(h&0x3ff)
	switch {
	case e == 0:
		v := float32(m) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	case e == 31:
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	}
	return math.Float32frombits(sign | (e+112)<<23 | m<<13)
}
