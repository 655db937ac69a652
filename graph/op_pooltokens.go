package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// PoolTokensOp builds the token sequence of OpenAI's AttentionPool2d from a
// channels-last feature map x [B*S, C] (S = H*W spatial tokens) and the positional
// embedding pos [S+1, C]: per image, row 0 is the mean of its S tokens and rows 1..S
// the tokens themselves, each plus its positional row. Output: [B*(S+1), C]. The mean
// accumulates in float64.
type PoolTokensOp struct {
	owned
	// Batch is B; Spatial is S.
	Batch, Spatial int
}

// Arity is 2: x, positional embedding.
func (o *PoolTokensOp) Arity() int { return 2 }

// Type is Matrix, Matrix -> Matrix.
func (o *PoolTokensOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2), tt(2)) }

// InferShape returns [B*(S+1), C].
func (o *PoolTokensOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 2, in)
	if err != nil {
		return nil, err
	}
	x, pos := s[0], s[1]
	if len(x) != 2 || !pos.Eq(tensor.Shape{o.Spatial + 1, x[1]}) || x[0] != o.Batch*o.Spatial {
		return nil, fmt.Errorf("graph: %v: x %v, positional %v", o, x, pos)
	}
	return tensor.Shape{o.Batch * (o.Spatial + 1), x[1]}, nil
}

// Do builds the tokens, one image per goroutine chunk.
func (o *PoolTokensOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	x, pos := v[0], v[1]
	c, sp := s[0][1], o.Spatial
	t := sp + 1
	out, dst, err := o.result(in, o.Batch*t, c)
	if err != nil {
		return nil, err
	}
	parallel(o.Batch, 1, func(lo, hi int) {
		mean := make([]float64, c)
		for b := lo; b < hi; b++ {
			img, tok := x[b*sp*c:(b+1)*sp*c], dst[b*t*c:(b+1)*t*c]
			clear(mean)
			for r := range sp {
				for j, xv := range img[r*c : (r+1)*c] {
					mean[j] += float64(xv)
					tok[(r+1)*c+j] = xv + pos[(r+1)*c+j]
				}
			}
			for j, m := range mean {
				tok[j] = float32(m/float64(sp)) + pos[j]
			}
		}
	})
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *PoolTokensOp) String() string {
	return fmt.Sprintf("PoolTokens{B=%d,S=%d}@%p", o.Batch, o.Spatial, o)
}

// WriteHash writes the op's identity.
func (o *PoolTokensOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *PoolTokensOp) Hashcode() uint32 { return hashOf(o) }

// PoolTokens prepends the mean token to each image's spatial tokens x [B*S, C] and
// adds pos [S+1, C] (PoolTokensOp).
func PoolTokens(name string, x, pos *G.Node, batch, spatial int) (*G.Node, error) {
	return G.ApplyOpWithName(&PoolTokensOp{Batch: batch, Spatial: spatial}, name, x, pos)
}
