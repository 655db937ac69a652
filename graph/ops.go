package graph

import (
	"fmt"
	"hash/fnv"

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
	_ pooledOp = (*Conv2dOp)(nil)
	_ pooledOp = (*AvgPoolOp)(nil)
	_ pooledOp = (*PoolTokensOp)(nil)
	_ pooledOp = (*QueryAttentionOp)(nil)
	_ pooledOp = (*ChannelsFirstOp)(nil)
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
	half bool      // the result is stored in bfloat16 (planned by Builder.Compile; see plan)
	prec Precision // the graph's (set by Builder.Compile)
	need []bool    // set by Builder.Backward: the inputs whose gradients it builds (grad.go)
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
	if err := o.claim(in, shape); err != nil {
		return nil, nil, err
	}
	return o.out, o.out.Data().([]float32), nil
}

// claim takes the bound slot for an output of the given shape, after checking that
// no input's slot has since been taken by another op.
func (o *owned) claim(in []G.Value, shape []int) error {
	if !o.out.Shape().Eq(tensor.Shape(shape)) {
		return fmt.Errorf("graph: output %v does not match the compiled %v", shape, o.out.Shape())
	}
	if err := o.a.check(in); err != nil {
		return err
	}
	o.slot.owner = o.out
	return nil
}

// resultBF16 is result for a result stored in bfloat16 (owned.half).
func (o *owned) resultBF16(in []G.Value, shape ...int) (*tensor.Dense, []uint16, error) {
	if o.out == nil {
		t := tensor.New(tensor.WithShape(shape...), tensor.Of(BFloat16))
		return t, t.Data().([]uint16), nil
	}
	if err := o.claim(in, shape); err != nil {
		return nil, nil, err
	}
	return o.out, o.out.Data().([]uint16), nil
}

// resultAct returns the storage for a result in the precision planned for it.
func (o *owned) resultAct(in []G.Value, shape ...int) (*tensor.Dense, act, error) {
	if o.half {
		t, h, err := o.resultBF16(in, shape...)
		return t, act{H: h, Shape: shape}, err
	}
	t, f, err := o.result(in, shape...)
	return t, act{F: f, Shape: shape}, err
}

// rows splits n rows for parallel: at least enough rows for ~16k values per goroutine.
func grainRows(width int) int { return max(1, 16384/max(width, 1)) }

// Activation selects the nonlinearity a fused op applies to its result.
type Activation int

const (
	// Identity applies nothing.
	Identity Activation = iota
	// QuickGELU is x*sigmoid(1.702x), what OpenAI's CLIP weights were trained with.
	QuickGELU
	// GELU is the exact erf GELU of torch.nn.GELU().
	GELU
	// ReLU is max(x, 0), the ResNet towers' nonlinearity.
	ReLU
)

// String returns "Identity", "QuickGELU", "GELU" or "ReLU".
func (a Activation) String() string {
	switch a {
	case QuickGELU:
		return "QuickGELU"
	case GELU:
		return "GELU"
	case ReLU:
		return "ReLU"
	}
	return "Identity"
}

// apply applies a to x in place.
func (a Activation) apply(x []float32) {
	switch a {
	case QuickGELU:
		quickGELU(x)
	case GELU:
		gelu(x)
	case ReLU:
		for i, v := range x {
			x[i] = max(v, 0)
		}
	}
}
