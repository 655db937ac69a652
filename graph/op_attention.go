package graph

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AttentionOp is multi-head scaled dot-product self-attention over torch's packed
// in-projection: for qkv [B*T, 3D] (q, k and v side by side in each row) it returns
// the heads' outputs merged back into rows [B*T, D]. For each sequence and head, one
// sgemm computes the scores Q K^T / sqrt(K) on strided views of qkv, a softmax (with
// the causal mask when Causal) turns them into weights, and a second sgemm multiplies
// them with V straight into the head's columns of the output: no head split, no merge,
// no broadcast. Sequence x head pairs are split over Threads() goroutines. The
// openblas build runs the same steps in one vectorised C kernel per goroutine
// (gc_attention in kernels_openblas.c), which also skips the causally masked products.
type AttentionOp struct {
	owned
	// Batch, Seq and Heads are B, T and H.
	Batch, Seq, Heads int
	// Causal masks positions j > i, as CLIP's text tower does.
	Causal bool
}

// Arity is 1.
func (o *AttentionOp) Arity() int { return 1 }

// Type is Matrix -> Matrix.
func (o *AttentionOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2)) }

// InferShape returns [B*T, D].
func (o *AttentionOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if len(x) != 2 || o.Heads <= 0 || x[0] != o.Batch*o.Seq || x[1]%(3*o.Heads) != 0 {
		return nil, fmt.Errorf("graph: %v: qkv %v", o, x)
	}
	return tensor.Shape{x[0], x[1] / 3}, nil
}

// Do runs the attention.
func (o *AttentionOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	if o.half || bf16Data(in[0]) != nil { // a BF16 graph (op_attention_bf16.go)
		return o.doBF16(in)
	}
	qkv, s, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	t, d3 := o.Seq, s[1]
	d := d3 / 3
	k := d / o.Heads
	out, dst, err := o.result(in, s[0], d)
	if err != nil {
		return nil, err
	}
	scale := float32(1 / math.Sqrt(float64(k)))
	parallel(o.Batch*o.Heads, 1, func(lo, hi int) {
		if !cAttention(dst, qkv, t, d, k, o.Heads, o.Causal, scale, lo, hi) {
			attention(dst, qkv, t, d, k, o.Heads, o.Causal, scale, lo, hi)
		}
	})
	return out, nil
}

// attention is AttentionOp's Go kernel for the sequence x head pairs [lo,hi) of qkv
// [B*T, 3D] (heads of width k) into dst [B*T, D].
func attention(dst, qkv []float32, t, d, k, heads int, causal bool, scale float32, lo, hi int) {
	d3 := 3 * d
	p := make([]float32, t*t) // scores, then weights [T,T]
	for bh := lo; bh < hi; bh++ {
		b, h := bh/heads, bh%heads
		q := qkv[b*t*d3+h*k:] // rows of Q for this head, stride 3D; K at +D, V at +2D
		attentionWeights(p, q, t, d, k, causal, scale)
		smallGemm.Sgemm(blas.NoTrans, blas.NoTrans, t, k, t, 1, p, t, q[2*d:], d3, 0, dst[b*t*d+h*k:], d)
	}
}

// attentionWeights writes the softmax weights p [T,T] of one sequence and head whose
// Q rows start q (K at +D), as AttentionOp's Go kernel computes them.
func attentionWeights(p, q []float32, t, d, k int, causal bool, scale float32) {
	smallGemm.Sgemm(blas.NoTrans, blas.Trans, t, t, k, scale, q, 3*d, q[d:], 3*d, 0, p, t)
	for i := range t {
		n := t
		if causal {
			n = i + 1
		}
		softmaxRow(p[i*t:(i+1)*t], n)
	}
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *AttentionOp) String() string {
	return fmt.Sprintf("Attention{B=%d,T=%d,H=%d,causal=%v}@%p", o.Batch, o.Seq, o.Heads, o.Causal, o)
}

// WriteHash writes the op's identity.
func (o *AttentionOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *AttentionOp) Hashcode() uint32 { return hashOf(o) }

// Attention is self-attention over a packed projection qkv [B*T, 3D], giving [B*T, D]
// (AttentionOp).
func Attention(name string, qkv *G.Node, batch, seq, heads int, causal bool) (*G.Node, error) {
	return G.ApplyOpWithName(&AttentionOp{Batch: batch, Seq: seq, Heads: heads, Causal: causal}, name, qkv)
}
