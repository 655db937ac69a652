package graph

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DiffWRT reports qkv differentiable.
func (o *AttentionOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds attention's backward pass: one op from qkv and dy to dqkv
// (attentionGradOp), which recomputes the softmax weights instead of keeping them.
func (o *AttentionOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if !o.needs(0) {
		return make(G.Nodes, 1), nil
	}
	d, err := applyGrad(&attentionGradOp{fwd: o}, "Attention'", output.Name()+".dqkv", inputs[0].Shape(), inputs[0], grad)
	return G.Nodes{d}, err
}

// attentionGradOp is dqkv [B*T, 3D] of AttentionOp from qkv and dy [B*T, D].
type attentionGradOp struct {
	gradBase
	fwd *AttentionOp
}

func (o *attentionGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		f := o.fwd
		d := o.shape[1] / 3
		k := d / f.Heads
		scale := float32(1 / math.Sqrt(float64(k)))
		parallel(f.Batch*f.Heads, 1, func(lo, hi int) {
			attentionGrad(dst, v[0], v[1], f.Seq, d, k, f.Heads, f.Causal, scale, lo, hi)
		})
	})
}

// attentionGrad writes dqkv for the sequence x head pairs [lo,hi): with P the softmax
// weights (recomputed), dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP*P)),
// dQ = scale dS K, dK = scale dS^T Q. Heads write disjoint columns of dqkv.
func attentionGrad(dqkv, qkv, dy []float32, t, d, k, heads int, causal bool, scale float32, lo, hi int) {
	d3 := 3 * d
	p, dp := make([]float32, t*t), make([]float32, t*t)
	for bh := lo; bh < hi; bh++ {
		b, h := bh/heads, bh%heads
		q := qkv[b*t*d3+h*k:] // Q, then K at +D and V at +2D, rows of stride 3D
		dq := dqkv[b*t*d3+h*k:]
		do := dy[b*t*d+h*k:] // rows of stride D
		attentionWeights(p, q, t, d, k, causal, scale)
		smallGemm.Sgemm(blas.Trans, blas.NoTrans, t, k, t, 1, p, t, do, d, 0, dq[2*d:], d3)
		smallGemm.Sgemm(blas.NoTrans, blas.Trans, t, t, k, 1, do, d, q[2*d:], d3, 0, dp, t)
		for i := range t {
			softmaxGradRow(dp[i*t:(i+1)*t], p[i*t:(i+1)*t])
		}
		smallGemm.Sgemm(blas.NoTrans, blas.NoTrans, t, k, t, scale, dp, t, q[d:], d3, 0, dq, d3)
		smallGemm.Sgemm(blas.Trans, blas.NoTrans, t, k, t, scale, dp, t, q, d3, 0, dq[d:], d3)
	}
}

// attentionProbsOp is the attention map of an AttentionOp: from the same packed qkv
// [B*T, 3D] it returns the softmax weights [B, H*T*T] (per sequence [H, query, key],
// zeros above the diagonal when causal). AttentionOp itself keeps no weights, so that
// inference pays nothing for them; this op recomputes them only where a graph asks.
type attentionProbsOp struct {
	gradBase
	fwd *AttentionOp
}

// Do recomputes the weights, sequence x head pairs split over Threads() goroutines.
func (o *attentionProbsOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		f := o.fwd
		t, d := f.Seq, len(v[0])/(f.Batch*f.Seq)/3
		k := d / f.Heads
		scale := float32(1 / math.Sqrt(float64(k)))
		parallel(f.Batch*f.Heads, 1, func(lo, hi int) {
			for bh := lo; bh < hi; bh++ {
				b, h := bh/f.Heads, bh%f.Heads
				attentionWeights(dst[bh*t*t:(bh+1)*t*t], v[0][b*t*3*d+h*k:], t, d, k, f.Causal, scale)
			}
		})
	})
}

// AttentionProbs returns the softmax weights [B, H*T*T] of attn, a node built by
// Attention (attentionProbsOp).
func AttentionProbs(name string, attn *G.Node) (*G.Node, error) {
	f, ok := attn.Op().(*AttentionOp)
	if !ok {
		return nil, fmt.Errorf("graph: AttentionProbs: %s is %v, not an Attention", attn.Name(), attn.Op())
	}
	qkv := attn.Graph().From(attn.ID())
	if !qkv.Next() {
		return nil, fmt.Errorf("graph: AttentionProbs: %s has no input", attn.Name())
	}
	label := fmt.Sprintf("AttentionProbs{B=%d,T=%d,H=%d}", f.Batch, f.Seq, f.Heads)
	return applyGrad(&attentionProbsOp{fwd: f}, label, name, tensor.Shape{f.Batch, f.Heads * f.Seq * f.Seq}, qkv.Node().(*G.Node))
}
