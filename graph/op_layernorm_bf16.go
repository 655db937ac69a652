package graph

import (
	G "gorgonia.org/gorgonia"
)

// bf16Input refuses bfloat16: LayerNorm reads the residual stream, which stays
// float32, and computes its statistics in float64.
func (o *LayerNormOp) bf16Input(int, []*G.Node) bool { return false }

// bf16Output offers a bfloat16 result: in a transformer block its readers are the
// q/k/v and c_fc GEMMs, which round it to bfloat16 anyway.
func (o *LayerNormOp) bf16Output() bool { return true }

// layerNormBF16 is LayerNorm of x [rows, d] straight into bfloat16 dst in AVX512
// (bf16_dnnl.c): the statistics as layerNorm computes them, the values rounded as
// toBF16 rounds them. Set where the build and the CPU have it; nil otherwise.
var layerNormBF16 func(dst []uint16, x, gain, bias []float32, d int, eps float32)

// doBF16 is Do for a bfloat16 result: rows normalised in float32, then rounded, a few
// rows at a time (the float32 rows stay in L1), or in one pass by layerNormBF16.
func (o *LayerNormOp) doBF16(in []G.Value) (G.Value, error) {
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	n, d := s[0][0], s[0][1]
	out, dst, err := o.resultAct(in, n, d)
	if err != nil {
		return nil, err
	}
	if dst.H != nil && layerNormBF16 != nil && n > 0 {
		parallel(n, grainRows(d), func(lo, hi int) {
			layerNormBF16(dst.H[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2], d, o.Eps)
		})
		return out, nil
	}
	const block = 8
	parallel(n, grainRows(d), func(lo, hi int) {
		buf := make([]float32, block*d)
		for r := lo; r < hi; r += block {
			e := min(r+block, hi)
			y := buf[:(e-r)*d]
			if !cLayerNorm(y, v[0][r*d:e*d], v[1], v[2], d, o.Eps) {
				layerNorm(y, v[0][r*d:e*d], v[1], v[2], d, o.Eps)
			}
			dst.rows(r, e, d).store(y)
		}
	})
	return out, nil
}
