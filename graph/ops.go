package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Compile-time checks that every custom op satisfies gorgonia's Op interface.
var (
	_ G.Op = LayerNormOp{}
	_ G.Op = SoftmaxOp{}
	_ G.Op = ActivationOp{}
	_ G.Op = BiasAddOp{}
	_ G.Op = SplitHeadsOp{}
	_ G.Op = MergeHeadsOp{}
	_ G.Op = ClassPosEmbedOp{}
	_ G.Op = AddPositionalOp{}
	_ G.Op = SelectRowsOp{}
)

// tt is the gorgonia type of a float32 tensor with dims dimensions.
func tt(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: tensor.Float32} }

// f32 returns the contiguous float32 data and shape of a value passed to Do.
func f32(v G.Value) ([]float32, tensor.Shape, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, nil, fmt.Errorf("graph: expected a tensor, got %T", v)
	}
	if d, ok := t.(*tensor.Dense); ok && d.RequiresIterator() {
		t = d.Materialize()
	}
	data, ok := t.Data().([]float32)
	if !ok {
		return nil, nil, fmt.Errorf("graph: expected float32 data, got %v", t.Dtype())
	}
	return data, t.Shape(), nil
}

// newF32 allocates a zeroed float32 tensor of the given shape.
func newF32(shape ...int) (*tensor.Dense, []float32) {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	return t, t.Data().([]float32)
}

// shapes converts InferShape's arguments, which are plain shapes for the nodes built here.
func shapes(op string, want int, in []G.DimSizer) ([]tensor.Shape, error) {
	if len(in) != want {
		return nil, fmt.Errorf("graph: %s takes %d inputs, got %d", op, want, len(in))
	}
	out := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("graph: %s input %d: unsupported shape %T", op, i, d)
		}
		out[i] = s
	}
	return out, nil
}

func hashOf(s fmt.Stringer) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s.String())
	return h.Sum32()
}

// pureOp holds the methods shared by every custom op here: each allocates its result
// (ReturnsPtr false), runs in Go (CallsExtern false) and never writes into an input.
type pureOp struct{}

// ReturnsPtr reports false: the result is freshly allocated, never an input.
func (pureOp) ReturnsPtr() bool { return false }

// CallsExtern reports false: the kernels are plain Go.
func (pureOp) CallsExtern() bool { return false }

// OverwritesInput reports -1: no input is modified.
func (pureOp) OverwritesInput() int { return -1 }

// LayerNormOp normalises each row of x [N,D] and applies gain [D] and bias [D]
// (torch.nn.LayerNorm over the last axis). Inputs: x, gain, bias. Output: [N,D].
type LayerNormOp struct {
	pureOp
	// Eps is added to the variance (1e-5 in CLIP).
	Eps float32
}

// Arity is 3: x, gain, bias.
func (o LayerNormOp) Arity() int { return 3 }

// Type is Matrix, Vector, Vector -> Matrix.
func (o LayerNormOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(1), tt(1), tt(2)) }

// InferShape returns x's shape after checking that gain and bias match its width.
func (o LayerNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes("LayerNorm", 3, in)
	if err != nil {
		return nil, err
	}
	if len(s[0]) != 2 || s[1].TotalSize() != s[0][1] || s[2].TotalSize() != s[0][1] {
		return nil, fmt.Errorf("graph: LayerNorm: x %v, gain %v, bias %v", s[0], s[1], s[2])
	}
	return s[0].Clone(), nil
}

// Do runs the reference kernel.
func (o LayerNormOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	g, _, err := f32(in[1])
	if err != nil {
		return nil, err
	}
	b, _, err := f32(in[2])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(sx...)
	layerNorm(dst, x, g, b, sx[1], o.Eps)
	return out, nil
}

// String names the op in graph dumps.
func (o LayerNormOp) String() string { return fmt.Sprintf("LayerNorm{eps=%g}", o.Eps) }

// WriteHash writes the op's identity.
func (o LayerNormOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o LayerNormOp) Hashcode() uint32 { return hashOf(o) }

// SoftmaxOp is attention's softmax: for scores [M,T,C] (M = B*H) it returns
// softmax(Scale*scores) over C, with positions j > i masked when Causal is set.
type SoftmaxOp struct {
	pureOp
	// Scale multiplies the scores first (1/sqrt(K) in attention).
	Scale float32
	// Causal masks the upper triangle (j > i) to -inf, as CLIP's text tower.
	Causal bool
}

// Arity is 1.
func (o SoftmaxOp) Arity() int { return 1 }

// Type is a -> a.
func (o SoftmaxOp) Type() hm.Type { return hm.NewFnType(tt(3), tt(3)) }

// InferShape returns the input shape, which must be [M,T,C].
func (o SoftmaxOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes("Softmax", 1, in)
	if err != nil {
		return nil, err
	}
	if len(s[0]) != 3 {
		return nil, fmt.Errorf("graph: Softmax: want [M,T,C] scores, got %v", s[0])
	}
	return s[0].Clone(), nil
}

// Do runs the reference kernel.
func (o SoftmaxOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(sx...)
	softmax(dst, x, sx[1], sx[2], o.Scale, o.Causal)
	return out, nil
}

// String names the op in graph dumps.
func (o SoftmaxOp) String() string {
	return fmt.Sprintf("Softmax{scale=%g,causal=%v}", o.Scale, o.Causal)
}

// WriteHash writes the op's identity.
func (o SoftmaxOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o SoftmaxOp) Hashcode() uint32 { return hashOf(o) }

// Activation selects the MLP nonlinearity.
type Activation int

const (
	// QuickGELU is x*sigmoid(1.702x), what OpenAI's CLIP weights were trained with.
	QuickGELU Activation = iota
	// GELU is the exact erf GELU of torch.nn.GELU().
	GELU
)

// String returns "QuickGELU" or "GELU".
func (a Activation) String() string {
	if a == GELU {
		return "GELU"
	}
	return "QuickGELU"
}

// ActivationOp applies Kind elementwise to a matrix [N,F].
type ActivationOp struct {
	pureOp
	// Kind is the nonlinearity.
	Kind Activation
}

// Arity is 1.
func (o ActivationOp) Arity() int { return 1 }

// Type is Matrix -> Matrix.
func (o ActivationOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2)) }

// InferShape returns the input shape.
func (o ActivationOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

// Do runs the reference kernel.
func (o ActivationOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(sx...)
	if o.Kind == GELU {
		gelu(dst, x)
	} else {
		quickGELU(dst, x)
	}
	return out, nil
}

// String names the op in graph dumps.
func (o ActivationOp) String() string { return o.Kind.String() }

// WriteHash writes the op's identity.
func (o ActivationOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o ActivationOp) Hashcode() uint32 { return hashOf(o) }

// BiasAddOp adds a bias [D] to every row of x [N,D].
type BiasAddOp struct{ pureOp }

// Arity is 2: x, bias.
func (o BiasAddOp) Arity() int { return 2 }

// Type is Matrix, Vector -> Matrix.
func (o BiasAddOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(1), tt(2)) }

// InferShape returns x's shape after checking the bias width.
func (o BiasAddOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes("BiasAdd", 2, in)
	if err != nil {
		return nil, err
	}
	if len(s[0]) != 2 || s[1].TotalSize() != s[0][1] {
		return nil, fmt.Errorf("graph: BiasAdd: x %v, bias %v", s[0], s[1])
	}
	return s[0].Clone(), nil
}

// Do runs the reference kernel.
func (o BiasAddOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	b, _, err := f32(in[1])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(sx...)
	biasAdd(dst, x, b)
	return out, nil
}

// String names the op in graph dumps.
func (o BiasAddOp) String() string { return "BiasAdd" }

// WriteHash writes the op's identity.
func (o BiasAddOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o BiasAddOp) Hashcode() uint32 { return hashOf(o) }

// SplitHeadsOp takes part Part (0 q, 1 k, 2 v) of attention's packed in-projection
// qkv [B*T, 3D] and lays it out per head as [B*H, T, K], K = D/H.
type SplitHeadsOp struct {
	pureOp
	// Batch, Seq and Heads are B, T and H.
	Batch, Seq, Heads int
	// Part selects q (0), k (1) or v (2).
	Part int
}

// Arity is 1.
func (o SplitHeadsOp) Arity() int { return 1 }

// Type is Matrix -> Tensor3.
func (o SplitHeadsOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(3)) }

// InferShape returns [B*H, T, K].
func (o SplitHeadsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if len(x) != 2 || x[0] != o.Batch*o.Seq || x[1]%(3*o.Heads) != 0 || o.Part < 0 || o.Part > 2 {
		return nil, fmt.Errorf("graph: %v: qkv %v", o, x)
	}
	return tensor.Shape{o.Batch * o.Heads, o.Seq, x[1] / (3 * o.Heads)}, nil
}

// Do runs the reference kernel.
func (o SplitHeadsOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	k := sx[1] / (3 * o.Heads)
	out, dst := newF32(o.Batch*o.Heads, o.Seq, k)
	splitHeads(dst, x, o.Batch, o.Seq, o.Heads, k, o.Part)
	return out, nil
}

// String names the op in graph dumps.
func (o SplitHeadsOp) String() string {
	return fmt.Sprintf("SplitHeads{B=%d,T=%d,H=%d,part=%c}", o.Batch, o.Seq, o.Heads, "qkv"[o.Part%3])
}

// WriteHash writes the op's identity.
func (o SplitHeadsOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o SplitHeadsOp) Hashcode() uint32 { return hashOf(o) }

// MergeHeadsOp concatenates the heads of x [B*H, T, K] back into rows [B*T, H*K].
type MergeHeadsOp struct {
	pureOp
	// Batch and Heads are B and H.
	Batch, Heads int
}

// Arity is 1.
func (o MergeHeadsOp) Arity() int { return 1 }

// Type is Tensor3 -> Matrix.
func (o MergeHeadsOp) Type() hm.Type { return hm.NewFnType(tt(3), tt(2)) }

// InferShape returns [B*T, H*K].
func (o MergeHeadsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if len(x) != 3 || x[0] != o.Batch*o.Heads {
		return nil, fmt.Errorf("graph: %v: x %v", o, x)
	}
	return tensor.Shape{o.Batch * x[1], o.Heads * x[2]}, nil
}

// Do runs the reference kernel.
func (o MergeHeadsOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(o.Batch*sx[1], o.Heads*sx[2])
	mergeHeads(dst, x, o.Batch, sx[1], o.Heads, sx[2])
	return out, nil
}

// String names the op in graph dumps.
func (o MergeHeadsOp) String() string { return fmt.Sprintf("MergeHeads{B=%d,H=%d}", o.Batch, o.Heads) }

// WriteHash writes the op's identity.
func (o MergeHeadsOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o MergeHeadsOp) Hashcode() uint32 { return hashOf(o) }

// ClassPosEmbedOp assembles the vision token sequence: inputs patch embeddings
// [B*(T-1), D], class embedding [D] and positional embedding [T,D]; output [B*T, D],
// each image's class token first, positional embedding added.
type ClassPosEmbedOp struct {
	pureOp
	// Batch is B.
	Batch int
}

// Arity is 3: patches, class embedding, positional embedding.
func (o ClassPosEmbedOp) Arity() int { return 3 }

// Type is Matrix, Vector, Matrix -> Matrix.
func (o ClassPosEmbedOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(1), tt(2), tt(2)) }

// InferShape returns [B*T, D].
func (o ClassPosEmbedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 3, in)
	if err != nil {
		return nil, err
	}
	x, cls, pos := s[0], s[1], s[2]
	if len(x) != 2 || len(pos) != 2 || x[1] != pos[1] || cls.TotalSize() != x[1] || x[0] != o.Batch*(pos[0]-1) {
		return nil, fmt.Errorf("graph: %v: patches %v, class %v, positional %v", o, x, cls, pos)
	}
	return tensor.Shape{o.Batch * pos[0], x[1]}, nil
}

// Do runs the reference kernel.
func (o ClassPosEmbedOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	cls, _, err := f32(in[1])
	if err != nil {
		return nil, err
	}
	pos, sp, err := f32(in[2])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(o.Batch*sp[0], sx[1])
	classPosEmbed(dst, x, cls, pos, o.Batch, sp[0], sx[1])
	return out, nil
}

// String names the op in graph dumps.
func (o ClassPosEmbedOp) String() string { return fmt.Sprintf("ClassPosEmbed{B=%d}", o.Batch) }

// WriteHash writes the op's identity.
func (o ClassPosEmbedOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o ClassPosEmbedOp) Hashcode() uint32 { return hashOf(o) }

// AddPositionalOp adds the first Seq rows of a positional embedding [Tmax,D] to every
// sequence of x [B*T, D] (T = Seq <= Tmax), so one weight serves trimmed text runs.
type AddPositionalOp struct {
	pureOp
	// Seq is T.
	Seq int
}

// Arity is 2: x, positional embedding.
func (o AddPositionalOp) Arity() int { return 2 }

// Type is Matrix, Matrix -> Matrix.
func (o AddPositionalOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2), tt(2)) }

// InferShape returns x's shape.
func (o AddPositionalOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
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

// Do runs the reference kernel.
func (o AddPositionalOp) Do(in ...G.Value) (G.Value, error) {
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	pos, _, err := f32(in[1])
	if err != nil {
		return nil, err
	}
	out, dst := newF32(sx...)
	addPositional(dst, x, pos, o.Seq, sx[1])
	return out, nil
}

// String names the op in graph dumps.
func (o AddPositionalOp) String() string { return fmt.Sprintf("AddPositional{T=%d}", o.Seq) }

// WriteHash writes the op's identity.
func (o AddPositionalOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o AddPositionalOp) Hashcode() uint32 { return hashOf(o) }

// SelectRowsOp picks one token per sequence of x [B*T, D], giving [B, D]. With
// Dynamic unset it picks position Index of every sequence (the vision class token,
// Index 0) and takes one input. With Dynamic set it takes a second input idx [B]
// holding each sequence's position as a float32 integer (text end-of-text pooling);
// positions outside [0,T) are an error at run time.
type SelectRowsOp struct {
	pureOp
	// Seq is T.
	Seq int
	// Index is the fixed position when Dynamic is false.
	Index int
	// Dynamic reads positions from the second input.
	Dynamic bool
}

// Arity is 1, or 2 when Dynamic.
func (o SelectRowsOp) Arity() int {
	if o.Dynamic {
		return 2
	}
	return 1
}

// Type is Matrix [, Vector] -> Matrix.
func (o SelectRowsOp) Type() hm.Type {
	if o.Dynamic {
		return hm.NewFnType(tt(2), tt(1), tt(2))
	}
	return hm.NewFnType(tt(2), tt(2))
}

// InferShape returns [B, D].
func (o SelectRowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
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

// Do runs the reference kernel.
func (o SelectRowsOp) Do(in ...G.Value) (G.Value, error) {
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
	out, dst := newF32(b, sx[1])
	selectRows(dst, x, idx, o.Seq, sx[1])
	return out, nil
}

// String names the op in graph dumps.
func (o SelectRowsOp) String() string {
	if o.Dynamic {
		return fmt.Sprintf("SelectRows{T=%d,dynamic}", o.Seq)
	}
	return fmt.Sprintf("SelectRows{T=%d,index=%d}", o.Seq, o.Index)
}

// WriteHash writes the op's identity.
func (o SelectRowsOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o SelectRowsOp) Hashcode() uint32 { return hashOf(o) }
