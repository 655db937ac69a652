package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SelectRowsOp picks one token per sequence of x [B*T, D], giving [B, D]. With
// Dynamic unset it picks position Index of every sequence (the vision class token,
// Index 0) and takes one input. With Dynamic set it takes a second input idx [B]
// holding each sequence's position as a float32 integer (text end-of-text pooling);
// positions outside [0,T) are an error at run time.
type SelectRowsOp struct {
	owned
	// Seq is T.
	Seq int
	// Index is the fixed position when Dynamic is false.
	Index int
	// Dynamic reads positions from the second input.
	Dynamic bool
}

// Arity is 1, or 2 when Dynamic.
func (o *SelectRowsOp) Arity() int {
	if o.Dynamic {
		return 2
	}
	return 1
}

// Type is Matrix [, Vector] -> Matrix.
func (o *SelectRowsOp) Type() hm.Type {
	if o.Dynamic {
		return hm.NewFnType(tt(2), tt(1), tt(2))
	}
	return hm.NewFnType(tt(2), tt(2))
}

// InferShape returns [B, D].
func (o *SelectRowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), o.Arity(), in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if len(x) != 2 || o.Seq <= 0 || x[0]%o.Seq != 0 || (!o.Dynamic && (o.Index < 0 || o.Index >= o.Seq)) {
		return nil, fmt.Errorf("graph: %v: x %v", o, x)
	}
	b := x[0] / o.Seq
	if o.Dynamic && s[1].TotalSize() != b {
		return nil, fmt.Errorf("graph: %v: x %v, positions %v", o, x, s[1])
	}
	return tensor.Shape{b, x[1]}, nil
}

// Do copies the rows.
func (o *SelectRowsOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	b := sx[0] / o.Seq
	idx := make([]int, b)
	for i := range idx {
		idx[i] = o.Index
	}
	if o.Dynamic {
		p, _, err := f32(in[1])
		if err != nil {
			return nil, err
		}
		for i, v := range p {
			if v < 0 || int(v) >= o.Seq || float32(int(v)) != v {
				return nil, fmt.Errorf("graph: %v: position %v of sequence %d out of range", o, v, i)
			}
			idx[i] = int(v)
		}
	}
	out, dst, err := o.result(in, b, sx[1])
	if err != nil {
		return nil, err
	}
	selectRows(dst, x, idx, o.Seq, sx[1])
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *SelectRowsOp) String() string {
	if o.Dynamic {
		return fmt.Sprintf("SelectRows{T=%d,dynamic}@%p", o.Seq, o)
	}
	return fmt.Sprintf("SelectRows{T=%d,index=%d}@%p", o.Seq, o.Index, o)
}

// WriteHash writes the op's identity.
func (o *SelectRowsOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *SelectRowsOp) Hashcode() uint32 { return hashOf(o) }

// SelectRow picks position index of every sequence of x [B*T, D], giving [B, D].
func SelectRow(name string, x *G.Node, seq, index int) (*G.Node, error) {
	return G.ApplyOpWithName(&SelectRowsOp{Seq: seq, Index: index}, name, x)
}

// SelectRows picks position idx[b] of sequence b of x [B*T, D], giving [B, D]; idx [B]
// holds integer positions as float32.
func SelectRows(name string, x, idx *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(&SelectRowsOp{Seq: seq, Dynamic: true}, name, x, idx)
}

// selectRows picks one row per sequence: dst[b] = x[b*T + idx[b]] for x [B*T, D].
func selectRows(dst, x []float32, idx []int, t, d int) {
	for bi, p := range idx {
		copy(dst[bi*d:(bi+1)*d], x[(bi*t+p)*d:(bi*t+p+1)*d])
	}
}
