package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AddPositionalOp adds the first Seq rows of a positional embedding [Tmax,D] to every
// sequence of x [B*T, D] (T = Seq <= Tmax), so one weight serves trimmed text runs.
type AddPositionalOp struct {
	owned
	// Seq is T.
	Seq int
}

// Arity is 2: x, positional embedding.
func (o *AddPositionalOp) Arity() int { return 2 }

// Type is Matrix, Matrix -> Matrix.
func (o *AddPositionalOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2), tt(2)) }

// InferShape returns x's shape.
func (o *AddPositionalOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 2, in)
	if err != nil {
		return nil, err
	}
	x, pos := s[0], s[1]
	if len(x) != 2 || len(pos) != 2 || x[1] != pos[1] || o.Seq <= 0 || o.Seq > pos[0] || x[0]%o.Seq != 0 {
		return nil, fmt.Errorf("graph: %v: x %v, positional %v", o, x, pos)
	}
	return x.Clone(), nil
}

// Do adds the embedding.
func (o *AddPositionalOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	out, dst, err := o.result(in, s[0]...)
	if err != nil {
		return nil, err
	}
	addPositional(dst, v[0], v[1], o.Seq, s[0][1])
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *AddPositionalOp) String() string { return fmt.Sprintf("AddPositional{T=%d}@%p", o.Seq, o) }

// WriteHash writes the op's identity.
func (o *AddPositionalOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *AddPositionalOp) Hashcode() uint32 { return hashOf(o) }

// AddPositional adds the first seq rows of pos [Tmax, D] to each sequence of x [B*T, D].
func AddPositional(name string, x, pos *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(&AddPositionalOp{Seq: seq}, name, x, pos)
}

// addPositional adds the first T rows of pos [Tmax, D] to each sequence of x [B*T, D].
func addPositional(dst, x, pos []float32, t, d int) {
	n := t * d
	for off := 0; off+n <= len(x); off += n {
		for i := 0; i < n; i++ {
			dst[off+i] = x[off+i] + pos[i]
		}
	}
}
