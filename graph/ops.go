package graph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Compile-time checks that every fused op is a gorgonia Op writing into the arena.
var (
	_ pooledOp = (*LayerNormOp)(nil)
	_ pooledOp = (*LinearOp)(nil)
	_ pooledOp = (*AttentionOp)(nil)
	_ pooledOp = (*PatchEmbedOp)(nil)
	_ pooledOp = (*AddPositionalOp)(nil)
	_ pooledOp = (*SelectRowsOp)(nil)
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

// f32s is f32 over every input.
func f32s(in []G.Value) ([][]float32, []tensor.Shape, error) {
	data, shapes := make([][]float32, len(in)), make([]tensor.Shape, len(in))
	for i, v := range in {
		var err error
		if data[i], shapes[i], err = f32(v); err != nil {
			return nil, nil, err
		}
	}
	return data, shapes, nil
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

// owned holds what every fused op shares: its output storage and gorgonia's memory
// flags. Builder.Compile binds the storage to a slot of the machine's arena, a buffer
// shared with other ops whose results are never live at the same time (see
// arena.assign); Do then writes its result there and returns the same *tensor.Dense on
// every run, so a compiled graph allocates no activations. Run outside a compiled
// Machine (unbound), Do allocates its result.
//
// The returned value is owned by the op: gorgonia's tape machine keeps it in a
// register and passes it to the consumers, which must only read it. Every consumer in
// the graphs built here is a fused op or an output tap (which copies), and an op that
// would overwrite an input in place keeps that input out of the shared slots.
type owned struct {
	out  *tensor.Dense
	slot *slot
	a    *arena
}

// pooledOp is a fused op with arena storage.
type pooledOp interface {
	G.Op
	storage() *owned
}

func (o *owned) storage() *owned { return o }

// ReturnsPtr reports false: the result is the op's own storage, never an input.
func (o *owned) ReturnsPtr() bool { return false }

// CallsExtern reports false: the op runs on the CPU (BLAS included) and needs no
// external device context.
func (o *owned) CallsExtern() bool { return false }

// OverwritesInput reports -1: no input is modified.
func (o *owned) OverwritesInput() int { return -1 }

// result returns the storage for an output of the given shape: the bound slot, after
// checking that no input's slot has since been taken by another op, or a new tensor.
func (o *owned) result(in []G.Value, shape ...int) (*tensor.Dense, []float32, error) {
	if o.out == nil {
		t, d := newF32(shape...)
		return t, d, nil
	}
	if !o.out.Shape().Eq(tensor.Shape(shape)) {
		return nil, nil, fmt.Errorf("graph: output %v does not match the compiled %v", shape, o.out.Shape())
	}
	if err := o.a.check(in); err != nil {
		return nil, nil, err
	}
	o.slot.owner = o.out
	return o.out, o.out.Data().([]float32), nil
}

// rows splits n rows for parallel: at least enough rows for ~16k values per goroutine.
func grainRows(width int) int { return max(1, 16384/max(width, 1)) }

// LayerNormOp normalises each row of x [N,D] and applies gain [D] and bias [D]
// (torch.nn.LayerNorm over the last axis). Inputs: x, gain, bias. Output: [N,D].
type LayerNormOp struct {
	owned
	// Eps is added to the variance (1e-5 in CLIP).
	Eps float32
}

// Arity is 3: x, gain, bias.
func (o *LayerNormOp) Arity() int { return 3 }

// Type is Matrix, Vector, Vector -> Matrix.
func (o *LayerNormOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(1), tt(1), tt(2)) }

// InferShape returns x's shape after checking that gain and bias match its width.
func (o *LayerNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes("LayerNorm", 3, in)
	if err != nil {
		return nil, err
	}
	if len(s[0]) != 2 || s[1].TotalSize() != s[0][1] || s[2].TotalSize() != s[0][1] {
		return nil, fmt.Errorf("graph: LayerNorm: x %v, gain %v, bias %v", s[0], s[1], s[2])
	}
	return s[0].Clone(), nil
}

// Do normalises the rows, split over Threads() goroutines.
func (o *LayerNormOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	n, d := s[0][0], s[0][1]
	out, dst, err := o.result(in, n, d)
	if err != nil {
		return nil, err
	}
	parallel(n, grainRows(d), func(lo, hi int) {
		if !cLayerNorm(dst[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2], d, o.Eps) {
			layerNorm(dst[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2], d, o.Eps)
		}
	})
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *LayerNormOp) String() string { return fmt.Sprintf("LayerNorm{eps=%g}@%p", o.Eps, o) }

// WriteHash writes the op's identity.
func (o *LayerNormOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *LayerNormOp) Hashcode() uint32 { return hashOf(o) }

// Activation selects the nonlinearity a Linear applies to its result.
type Activation int

const (
	// Identity applies nothing.
	Identity Activation = iota
	// QuickGELU is x*sigmoid(1.702x), what OpenAI's CLIP weights were trained with.
	QuickGELU
	// GELU is the exact erf GELU of torch.nn.GELU().
	GELU
)

// String returns "Identity", "QuickGELU" or "GELU".
func (a Activation) String() string {
	switch a {
	case QuickGELU:
		return "QuickGELU"
	case GELU:
		return "GELU"
	}
	return "Identity"
}

// LinearOp is torch.nn.Linear fused with what follows it in a transformer block:
// y = act(x @ W^T + bias) or y = residual + x @ W^T + bias, one BLAS sgemm on the
// inputs' backing arrays followed by one pass over y. Inputs: x [N,In], W [Out,In]
// (or [In,Out] with InOut, for CLIP's projections stored as x @ proj), then bias [Out]
// when Bias is set, then residual [N,Out] when Residual is set. Output: [N,Out].
type LinearOp struct {
	owned
	// InOut says W is stored [In,Out] (y = x @ W) rather than PyTorch's [Out,In].
	InOut bool
	// Bias says a bias input follows W.
	Bias bool
	// Act is applied last (not with Residual).
	Act Activation
	// Residual says a residual input [N,Out] follows and is added to the result.
	Residual bool
}

// Arity is 2, plus one for Bias and one for Residual.
func (o *LinearOp) Arity() int {
	n := 2
	if o.Bias {
		n++
	}
	if o.Residual {
		n++
	}
	return n
}

// Type is Matrix, Matrix[, Vector][, Matrix] -> Matrix.
func (o *LinearOp) Type() hm.Type {
	ts := []hm.Type{tt(2), tt(2)}
	if o.Bias {
		ts = append(ts, tt(1))
	}
	if o.Residual {
		ts = append(ts, tt(2))
	}
	return hm.NewFnType(append(ts, tt(2))...)
}

// dims returns In and Out for a weight of shape w.
func (o *LinearOp) dims(w tensor.Shape) (in, out int) {
	if o.InOut {
		return w[0], w[1]
	}
	return w[1], w[0]
}

// InferShape returns [N,Out] after checking every input against x and W.
func (o *LinearOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.kind(), o.Arity(), in)
	if err != nil {
		return nil, err
	}
	if o.Residual && o.Act != Identity {
		return nil, fmt.Errorf("graph: %s: an activation after a residual add is not supported", o.kind())
	}
	x, w := s[0], s[1]
	if len(x) != 2 || len(w) != 2 {
		return nil, fmt.Errorf("graph: %s: x %v, weight %v", o.kind(), x, w)
	}
	nin, nout := o.dims(w)
	if x[1] != nin {
		return nil, fmt.Errorf("graph: %s: x %v does not match weight %v (inputs %d)", o.kind(), x, w, nin)
	}
	i := 2
	if o.Bias {
		if s[i].TotalSize() != nout {
			return nil, fmt.Errorf("graph: %s: bias %v, want %d values", o.kind(), s[i], nout)
		}
		i++
	}
	if o.Residual && !s[i].Eq(tensor.Shape{x[0], nout}) {
		return nil, fmt.Errorf("graph: %s: residual %v, want [%d %d]", o.kind(), s[i], x[0], nout)
	}
	return tensor.Shape{x[0], nout}, nil
}

// Do runs the GEMM through gemm (OpenBLAS or gonum) straight into the op's storage,
// then adds bias and residual and applies the activation in one parallel pass.
func (o *LinearOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	n, nin := s[0][0], s[0][1]
	_, nout := o.dims(s[1])
	out, dst, err := o.result(in, n, nout)
	if err != nil {
		return nil, err
	}
	tw := blas.Trans
	if o.InOut {
		tw = blas.NoTrans
	}
	gemm.Sgemm(blas.NoTrans, tw, n, nout, nin, 1, v[0], nin, v[1], s[1][1], 0, dst, nout)
	var bias, res []float32
	i := 2
	if o.Bias {
		bias, i = v[i], i+1
	}
	if o.Residual {
		res = v[i]
	}
	if bias == nil && res == nil && o.Act == Identity {
		return out, nil
	}
	parallel(n, grainRows(nout), func(lo, hi int) {
		y, r := dst[lo*nout:hi*nout], res[min(lo*nout, len(res)):min(hi*nout, len(res))]
		if !cLinearEpilogue(y, bias, r, nout, o.Act) {
			linearEpilogue(y, bias, r, nout, o.Act)
		}
	})
	return out, nil
}

// linearEpilogue finishes rows y [rows,Out] of a Linear: y += bias (each row) and
// y += res when res is not empty, then the activation.
func linearEpilogue(y, bias, res []float32, nout int, act Activation) {
	for r := 0; r < len(y); r += nout {
		row := y[r : r+nout]
		if bias != nil {
			for j, b := range bias {
				row[j] += b
			}
		}
		if len(res) > 0 {
			for j, x := range res[r : r+nout] {
				row[j] += x
			}
		}
		switch act {
		case QuickGELU:
			quickGELU(row)
		case GELU:
			gelu(row)
		}
	}
}

func (o *LinearOp) kind() string {
	k := "Linear"
	if o.InOut {
		k += "{x@W}"
	}
	if o.Bias {
		k += "+bias"
	}
	if o.Residual {
		k += "+residual"
	}
	if o.Act != Identity {
		k += "+" + o.Act.String()
	}
	return k
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *LinearOp) String() string { return fmt.Sprintf("%s@%p", o.kind(), o) }

// WriteHash writes the op's identity.
func (o *LinearOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *LinearOp) Hashcode() uint32 { return hashOf(o) }

// smallGemm runs attention's per-head products (tens of rows): gonum's pure-Go sgemm
// is serial at these sizes and safe to call from many goroutines at once, unlike a
// threaded OpenBLAS, and costs no cgo call.
var smallGemm blas.Float32Level3 = gonum.Implementation{}

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
		smallGemm.Sgemm(blas.NoTrans, blas.Trans, t, t, k, scale, q, d3, q[d:], d3, 0, p, t)
		for i := 0; i < t; i++ {
			n := t
			if causal {
				n = i + 1
			}
			softmaxRow(p[i*t:(i+1)*t], n)
		}
		smallGemm.Sgemm(blas.NoTrans, blas.NoTrans, t, k, t, 1, p, t, q[2*d:], d3, 0, dst[b*t*d+h*k:], d)
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

// PatchEmbedOp is the vision tower's input stage: CLIP-normalised images
// pixels [B, 3*R*R] (each [3,R,R] row-major) -> tokens [B*T, D], T = G*G+1. For each
// image it lays the G*G patches out as rows (patchify), multiplies them with conv1's
// weight [D, 3*P*P] (conv1 is a stride-P, P-by-P convolution without bias) straight
// into the image's token rows 1..G*G, puts the class embedding [D] in row 0 and adds
// the positional embedding [T, D]. Inputs: pixels, conv1 weight, class, positional.
type PatchEmbedOp struct {
	owned
	// Batch is B; Resolution and Patch are R and P.
	Batch, Resolution, Patch int
	patches                  []float32 // scratch [G*G, 3*P*P], reused
}

// Arity is 4.
func (o *PatchEmbedOp) Arity() int { return 4 }

// Type is Matrix, Matrix, Vector, Matrix -> Matrix.
func (o *PatchEmbedOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2), tt(1), tt(2), tt(2)) }

// InferShape returns [B*T, D].
func (o *PatchEmbedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 4, in)
	if err != nil {
		return nil, err
	}
	px, w, cls, pos := s[0], s[1], s[2], s[3]
	r, p := o.Resolution, o.Patch
	if p <= 0 || r%p != 0 {
		return nil, fmt.Errorf("graph: %v: resolution %d is not a multiple of the patch size %d", o, r, p)
	}
	g := r / p
	if !px.Eq(tensor.Shape{o.Batch, 3 * r * r}) || len(w) != 2 || w[1] != 3*p*p ||
		cls.TotalSize() != w[0] || !pos.Eq(tensor.Shape{g*g + 1, w[0]}) {
		return nil, fmt.Errorf("graph: %v: pixels %v, conv1 %v, class %v, positional %v", o, px, w, cls, pos)
	}
	return tensor.Shape{o.Batch * (g*g + 1), w[0]}, nil
}

// Do embeds the images one at a time (each a [G*G, 3PP] x [3PP, D] sgemm).
func (o *PatchEmbedOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	px, w, cls, pos := v[0], v[1], v[2], v[3]
	r, p, d := o.Resolution, o.Patch, s[1][0]
	g2, pp := (r/p)*(r/p), 3*p*p
	t := g2 + 1
	out, dst, err := o.result(in, o.Batch*t, d)
	if err != nil {
		return nil, err
	}
	if len(o.patches) != g2*pp {
		o.patches = make([]float32, g2*pp)
	}
	for b := 0; b < o.Batch; b++ {
		tok := dst[b*t*d : (b+1)*t*d]
		copy(tok, pos)
		for j, c := range cls {
			tok[j] += c
		}
		patchify(o.patches, px[b*3*r*r:(b+1)*3*r*r], r, p)
		gemm.Sgemm(blas.NoTrans, blas.Trans, g2, d, pp, 1, o.patches, pp, w, pp, 1, tok[d:], d)
	}
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *PatchEmbedOp) String() string {
	return fmt.Sprintf("PatchEmbed{B=%d,R=%d,P=%d}@%p", o.Batch, o.Resolution, o.Patch, o)
}

// WriteHash writes the op's identity.
func (o *PatchEmbedOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *PatchEmbedOp) Hashcode() uint32 { return hashOf(o) }

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
