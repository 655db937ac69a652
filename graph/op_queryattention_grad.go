package graph

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// DiffWRT reports q and kv differentiable.
func (o *QueryAttentionOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds dq [B, D] and dkv [B*T, 2D], each by one op that recomputes the
// softmax weights.
func (o *QueryAttentionOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 2)
	for i, what := range []string{"dq", "dkv"} {
		if !o.needs(i) {
			continue
		}
		var err error
		op := &queryAttentionGradOp{fwd: o, kv: i == 1}
		if grads[i], err = applyGrad(op, "QueryAttention'"+what[1:], output.Name()+"."+what, inputs[i].Shape(), inputs[0], inputs[1], grad); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// queryAttentionGradOp is QueryAttentionOp's dq [B, D], or with kv set its dkv
// [B*T, 2D], from q, kv and dy [B, D]. Per sequence and head, with p the weights:
// dv_j = p_j dy, ds_j = p_j (dy.v_j - sum_i p_i dy.v_i), dq = scale sum_j ds_j k_j,
// dk_j = scale ds_j q.
type queryAttentionGradOp struct {
	gradBase
	fwd *QueryAttentionOp
	kv  bool
}

func (o *queryAttentionGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		q, kv, dy := v[0], v[1], v[2]
		f := o.fwd
		t, d := f.Seq, len(q)/f.Batch
		k := d / f.Heads
		scale := float32(1 / math.Sqrt(float64(k)))
		parallel(f.Batch*f.Heads, 1, func(lo, hi int) {
			p, dp := make([]float32, t), make([]float32, t)
			for bh := lo; bh < hi; bh++ {
				b, h := bh/f.Heads, bh%f.Heads
				qh, gy := q[b*d+h*k:b*d+(h+1)*k], dy[b*d+h*k:b*d+(h+1)*k]
				key := func(j int) []float32 { return kv[(b*t+j)*2*d+h*k : (b*t+j)*2*d+(h+1)*k] }
				val := func(j int) []float32 { return kv[(b*t+j)*2*d+d+h*k : (b*t+j)*2*d+d+(h+1)*k] }
				for j := range t {
					p[j] = dot32(qh, key(j)) * scale
					dp[j] = dot32(gy, val(j))
				}
				softmaxRow(p, t)
				softmaxGradRow(dp, p)
				if !o.kv {
					dq := dst[b*d+h*k : b*d+(h+1)*k]
					for j := range t {
						axpy32(scale*dp[j], key(j), dq)
					}
					continue
				}
				for j := range t {
					row := dst[(b*t+j)*2*d:]
					axpy32(scale*dp[j], qh, row[h*k:(h+1)*k])
					axpy32(p[j], gy, row[d+h*k:d+(h+1)*k])
				}
			}
		})
	})
}

// dot32 is the dot product of a and b.
func dot32(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// axpy32 adds alpha*x to y.
func axpy32(alpha float32, x, y []float32) {
	for i, v := range x {
		y[i] += alpha * v
	}
}
