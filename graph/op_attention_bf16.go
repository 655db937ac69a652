package graph

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// bf16Input accepts q, k and v in bfloat16: they are GEMM results that PyTorch's
// bfloat16 models keep in bfloat16 too, and the scores, the softmax and the
// weighted sum of V are computed in float32 from them (see the package
// documentation for the measurement behind the choice).
func (o *AttentionOp) bf16Input(i int, in []*G.Node) bool { return true }

// bf16Output offers a bfloat16 result: its only reader is the out-projection GEMM,
// which rounds it to bfloat16 anyway.
func (o *AttentionOp) bf16Output() bool { return true }

// attentionBF16 is attention from bfloat16 q, k and v into dst for the sequence x
// head pairs [lo,hi), heads of width k (a multiple of 32, at most 256): AVX512-BF16
// dot products for the scores, float32 for the rest (bf16_dnnl.c); nil where the
// build or the CPU lacks it.
var attentionBF16 func(dst act, qkv []uint16, t, d, k, heads int, causal bool, scale float32, lo, hi int)

// doBF16 is Do when qkv or the result is bfloat16: the AVX512-BF16 kernel where there
// is one, else each sequence's rows widened to float32, attended with the float32
// kernel and stored in the result's precision.
func (o *AttentionOp) doBF16(in []G.Value) (G.Value, error) {
	qkv, err := activation(in[0])
	if err != nil {
		return nil, err
	}
	t, d3 := o.Seq, qkv.Shape[1]
	d := d3 / 3
	k := d / o.Heads
	out, dst, err := o.resultAct(in, qkv.Shape[0], d)
	if err != nil {
		return nil, err
	}
	scale := float32(1 / math.Sqrt(float64(k)))
	if attentionBF16 != nil && qkv.H != nil && k%32 == 0 && k <= 256 {
		parallel(o.Batch*o.Heads, 1, func(lo, hi int) { attentionBF16(dst, qkv.H, t, d, k, o.Heads, o.Causal, scale, lo, hi) })
		return out, nil
	}
	parallel(o.Batch, 1, func(lo, hi int) {
		var xbuf []float32
		y := make([]float32, t*d)
		for b := lo; b < hi; b++ {
			x := qkv.rows(b*t, (b+1)*t, d3).widen(&xbuf)
			if !cAttention(y, x, t, d, k, o.Heads, o.Causal, scale, 0, o.Heads) {
				attention(y, x, t, d, k, o.Heads, o.Causal, scale, 0, o.Heads)
			}
			dst.rows(b*t, (b+1)*t, d).store(y)
		}
	})
	return out, nil
}
