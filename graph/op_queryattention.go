package graph

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// QueryAttentionOp is multi-head attention of one query per sequence over that
// sequence's keys and values, as OpenAI's AttentionPool2d runs it (its query is the
// mean token): q [B, D] and kv [B*T, 2D] (each row k then v, as one Linear over the
// stacked k_proj and v_proj gives them) to [B, D], heads of width K = D/H merged.
// Scores are scaled by 1/sqrt(K), as torch.nn.functional.multi_head_attention_forward
// does.
type QueryAttentionOp struct {
	owned
	// Batch, Seq and Heads are B, T and H.
	Batch, Seq, Heads int
}

// Arity is 2: q, kv.
func (o *QueryAttentionOp) Arity() int { return 2 }

// Type is Matrix, Matrix -> Matrix.
func (o *QueryAttentionOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2), tt(2)) }

// InferShape returns [B, D].
func (o *QueryAttentionOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 2, in)
	if err != nil {
		return nil, err
	}
	q, kv := s[0], s[1]
	if len(q) != 2 || o.Heads <= 0 || q[0] != o.Batch || q[1]%o.Heads != 0 || !kv.Eq(tensor.Shape{o.Batch * o.Seq, 2 * q[1]}) {
		return nil, fmt.Errorf("graph: %v: q %v, kv %v", o, q, kv)
	}
	return q.Clone(), nil
}

// Do runs the attention, sequence x head pairs split over Threads() goroutines.
func (o *QueryAttentionOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	q, kv := v[0], v[1]
	d, t := s[0][1], o.Seq
	k := d / o.Heads
	out, dst, err := o.result(in, o.Batch, d)
	if err != nil {
		return nil, err
	}
	scale := float32(1 / math.Sqrt(float64(k)))
	parallel(o.Batch*o.Heads, 1, func(lo, hi int) {
		p := make([]float32, t)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/o.Heads, bh%o.Heads
			qh := q[b*d+h*k : b*d+(h+1)*k]
			for j := range t {
				kj := kv[(b*t+j)*2*d+h*k:]
				var dot float32
				for i, x := range qh {
					dot += x * kj[i]
				}
				p[j] = dot * scale
			}
			softmaxRow(p, t)
			y := dst[b*d+h*k : b*d+(h+1)*k]
			clear(y)
			for j, w := range p {
				vj := kv[(b*t+j)*2*d+d+h*k:]
				for i := range y {
					y[i] += w * vj[i]
				}
			}
		}
	})
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *QueryAttentionOp) String() string {
	return fmt.Sprintf("QueryAttention{B=%d,T=%d,H=%d}@%p", o.Batch, o.Seq, o.Heads, o)
}

// WriteHash writes the op's identity.
func (o *QueryAttentionOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *QueryAttentionOp) Hashcode() uint32 { return hashOf(o) }

// QueryAttention attends from one query per sequence q [B, D] over kv [B*T, 2D]
// (QueryAttentionOp).
func QueryAttention(name string, q, kv *G.Node, batch, seq, heads int) (*G.Node, error) {
	return G.ApplyOpWithName(&QueryAttentionOp{Batch: batch, Seq: seq, Heads: heads}, name, q, kv)
}
