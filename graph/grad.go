package graph

import (
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Backward adds the backward pass of the graph to it: for each outputs[i], seeds[i] is
// dL/doutputs[i] (a node of the same shape: usually an Input the caller fills with a
// gradient computed on the host, see Host for one computed during the run), and the
// returned nodes are dL/dwrt[j], in order, ready for Output. wrt may be inputs (pixels,
// token embeddings), weights (Param nodes) or intermediate nodes (a tower's taps).
//
// It is reverse-mode differentiation over the ops' DiffWRT and SymDiff, gorgonia's
// interface for symbolic differentiation: the fused ops build their backward nodes
// from backward ops of this package (the op_*_grad.go files). First Backward marks on
// every op the inputs that lead to a wrt node (its DiffWRT then reports only those),
// so that no gradient nobody asked for is built: asking for the pixels' gradient
// builds no weight gradient. Then it visits the active nodes from the outputs back,
// sums the gradients reaching each (a node read twice: the residual stream) with
// sumOp, and calls SymDiff. This is G.Backpropagate's sweep, done here because
// gorgonia sums with its built-in Add, which runs on the host only and may write into
// its operands (see doc.go). Forward results the backward ops read stay live until they
// have run: the arena (arena.go) plans over the whole graph, so only a graph with a
// backward pass keeps activations longer, and an inference graph is unchanged.
//
// Backward may be called once per Builder, before Compile. The machine then computes
// the outputs and the gradients in one Run.
func (b *Builder) Backward(outputs, seeds, wrt []*G.Node) (grads []*G.Node, err error) {
	switch {
	case b.backward:
		return nil, errors.New("graph: Backward called twice on one graph")
	case len(outputs) == 0 || len(outputs) != len(seeds):
		return nil, fmt.Errorf("graph: Backward: %d outputs and %d seeds", len(outputs), len(seeds))
	case len(wrt) == 0:
		return nil, errors.New("graph: Backward: nothing to differentiate with respect to")
	}
	for i, o := range outputs {
		if !o.Shape().Eq(seeds[i].Shape()) {
			return nil, fmt.Errorf("graph: Backward: the gradient of %s is %v, the output is %v", o.Name(), seeds[i].Shape(), o.Shape())
		}
	}
	b.backward = true
	order, active, err := b.markNeeded(outputs, wrt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graph: Backward: %v", r)
		}
	}()
	terms := map[*G.Node][]*G.Node{} // gradient terms reaching each node, summed on its visit
	for i, o := range outputs {
		terms[o] = append(terms[o], seeds[i])
	}
	for i := len(order) - 1; i >= 0; i-- { // consumers before their inputs
		n := order[i]
		if !active[n] {
			continue
		}
		g, err := sumGrads(n, terms[n])
		if err != nil {
			return nil, err
		}
		terms[n] = []*G.Node{g}
		op, ok := n.Op().(G.SDOp)
		if !ok { // an input or a weight
			continue
		}
		in := children(b.G, n)
		cg, err := op.SymDiff(in, n, g)
		if err != nil {
			return nil, fmt.Errorf("graph: Backward: %s (%v): %w", n.Name(), n.Op(), err)
		}
		for j, d := range op.DiffWRT(len(in)) {
			if !d || !active[in[j]] {
				continue
			}
			if j >= len(cg) || cg[j] == nil {
				return nil, fmt.Errorf("graph: Backward: %s (%v) built no gradient for its input %d", n.Name(), n.Op(), j)
			}
			terms[in[j]] = append(terms[in[j]], cg[j])
		}
	}
	for _, w := range wrt {
		grads = append(grads, terms[w][0])
	}
	return grads, nil
}

// sumGrads returns the gradient of n from the terms reaching it: the one term, or
// their sum (sumOp).
func sumGrads(n *G.Node, terms []*G.Node) (*G.Node, error) {
	switch len(terms) {
	case 0:
		return nil, fmt.Errorf("graph: Backward: no gradient reaches %s", n.Name())
	case 1:
		return terms[0], nil
	}
	for _, t := range terms {
		if !t.Shape().Eq(n.Shape()) {
			return nil, fmt.Errorf("graph: Backward: a gradient of %s is %v, the node is %v", n.Name(), t.Shape(), n.Shape())
		}
	}
	return applyGrad(&sumOp{}, fmt.Sprintf("Sum{%d}", len(terms)), n.Name()+".grad", n.Shape(), terms...)
}

// markNeeded finds the active nodes, those on a differentiable path from a wrt node
// to an output, and sets the need mask of every fused op among them. It returns the
// graph's nodes in execution order (inputs before their consumers) and the active set.
func (b *Builder) markNeeded(outputs, wrt []*G.Node) ([]*G.Node, map[*G.Node]bool, error) {
	sorted, err := G.Sort(b.G)
	if err != nil {
		return nil, nil, fmt.Errorf("graph: sort: %w", err)
	}
	slices.Reverse(sorted)             // execution order: inputs before their consumers
	static := func(n *G.Node) []bool { // nil: an input, or an op with no backward pass
		if op, ok := n.Op().(G.SDOp); ok {
			return op.DiffWRT(len(children(b.G, n)))
		}
		return nil
	}
	// affects: the nodes an output depends on differentiably.
	affects := map[*G.Node]bool{}
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		if !affects[n] && !slices.Contains(outputs, n) {
			continue
		}
		affects[n] = true
		d := static(n)
		for j, c := range children(b.G, n) {
			if d != nil && d[j] {
				affects[c] = true
			}
		}
	}
	// active: those that also depend differentiably on a wrt node.
	active := map[*G.Node]bool{}
	for _, n := range sorted {
		dep := slices.Contains(wrt, n)
		d := static(n)
		for j, c := range children(b.G, n) {
			if !active[c] {
				continue
			}
			if d == nil || !d[j] {
				if affects[n] {
					return nil, nil, fmt.Errorf("graph: Backward: %s (%v) has no gradient with respect to its input %d, "+
						"which depends on what is differentiated", n.Name(), n.Op(), j)
				}
				continue
			}
			dep = true
		}
		if dep && affects[n] {
			active[n] = true
		}
	}
	var unreached []string
	for _, w := range wrt {
		if !active[w] {
			unreached = append(unreached, w.Name())
		}
	}
	if len(unreached) > 0 {
		return nil, nil, fmt.Errorf("graph: Backward: no output depends differentiably on %s", strings.Join(unreached, ", "))
	}
	for n := range active {
		op, ok := n.Op().(pooledOp)
		if !ok {
			continue
		}
		d := static(n)
		need := make([]bool, len(d))
		for j, c := range children(b.G, n) {
			need[j] = d[j] && active[c]
		}
		op.storage().need = need
	}
	return sorted, active, nil
}

// diffWRT is the DiffWRT of the fused ops: every input but those listed in fixed
// (integer positions, weights' layouts) is differentiable, narrowed by Backward's mask.
func (o *owned) diffWRT(n int, fixed ...int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = !slices.Contains(fixed, i) && (o.need == nil || o.need[i])
	}
	return d
}

// needs reports whether SymDiff must build the gradient of input i.
func (o *owned) needs(i int) bool { return o.need == nil || o.need[i] }

// DiffWRT reports that an output tap passes no gradient: outputs are read, not
// differentiated through.
func (o *tapOp) DiffWRT(n int) []bool { return make([]bool, n) }

// SymDiff is never called (DiffWRT is all false).
func (o *tapOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("graph: an output tap has no derivative")
}

// gradBase is what the ops derived from other nodes share (the backward ops, attention
// maps, host nodes): arena storage, an output shape fixed when the op is built (a
// gradient has the shape of what it is the gradient of), and no derivative of its own
// (no second derivatives).
type gradBase struct {
	owned
	label string       // what the op computes, for graph dumps
	dims  []int        // each input's number of dimensions
	shape tensor.Shape // the output's shape
}

// gradOp is an op built on gradBase.
type gradOp interface {
	pooledOp
	base() *gradBase
}

// Compile-time checks that the derived ops are gradOps and the forward ops differentiable.
var (
	_ gradOp = (*sumOp)(nil)
	_ gradOp = (*colSumOp)(nil)
	_ gradOp = (*scaleColsOp)(nil)
	_ gradOp = (*actGradOp)(nil)
	_ gradOp = (*transMatMulOp)(nil)
	_ gradOp = (*batchSumOp)(nil)
	_ gradOp = (*hostOp)(nil)
	_ gradOp = (*layerNormGradOp)(nil)
	_ gradOp = (*layerNormGainGradOp)(nil)
	_ gradOp = (*attentionGradOp)(nil)
	_ gradOp = (*attentionProbsOp)(nil)
	_ gradOp = (*patchEmbedGradOp)(nil)
	_ gradOp = (*scatterRowsOp)(nil)
	_ gradOp = (*conv2dGradOp)(nil)
	_ gradOp = (*avgPoolGradOp)(nil)
	_ gradOp = (*poolTokensGradOp)(nil)
	_ gradOp = (*queryAttentionGradOp)(nil)
	_ gradOp = (*channelsLastOp)(nil)

	_ G.SDOp = (*LayerNormOp)(nil)
	_ G.SDOp = (*LinearOp)(nil)
	_ G.SDOp = (*AttentionOp)(nil)
	_ G.SDOp = (*PatchEmbedOp)(nil)
	_ G.SDOp = (*AddPositionalOp)(nil)
	_ G.SDOp = (*SelectRowsOp)(nil)
	_ G.SDOp = (*Conv2dOp)(nil)
	_ G.SDOp = (*AvgPoolOp)(nil)
	_ G.SDOp = (*PoolTokensOp)(nil)
	_ G.SDOp = (*QueryAttentionOp)(nil)
	_ G.SDOp = (*ChannelsFirstOp)(nil)
	_ G.SDOp = (*tapOp)(nil)
)

func (o *gradBase) base() *gradBase { return o }

// Arity is the number of inputs the op was built with.
func (o *gradBase) Arity() int { return len(o.dims) }

// Type maps the inputs' tensor types to the output's.
func (o *gradBase) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.dims)+1)
	for _, d := range o.dims {
		ts = append(ts, tt(d))
	}
	return hm.NewFnType(append(ts, tt(len(o.shape)))...)
}

// InferShape returns the shape fixed at construction.
func (o *gradBase) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != len(o.dims) {
		return nil, fmt.Errorf("graph: %s takes %d inputs, got %d", o.label, len(o.dims), len(in))
	}
	return o.shape.Clone(), nil
}

// DiffWRT is all false: backward ops are not differentiated again.
func (o *gradBase) DiffWRT(n int) []bool { return make([]bool, n) }

// SymDiff is never called (DiffWRT is all false).
func (o *gradBase) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("graph: %s has no derivative (no second derivatives)", o.label)
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *gradBase) String() string { return fmt.Sprintf("%s@%p", o.label, o) }

// WriteHash writes the op's identity.
func (o *gradBase) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *gradBase) Hashcode() uint32 { return hashOf(o) }

// run is the frame of a backward op's Do: on a device machine it runs op's device
// implementation; on the CPU it reads the inputs, takes the op's storage zeroed (the
// kernels accumulate) and calls k on them.
func (o *gradBase) run(op G.Op, in []G.Value, k func(dst []float32, v [][]float32)) (G.Value, error) {
	if v, ok, err := o.onDevice(op, in); ok {
		return v, err
	}
	v, _, err := f32s(in)
	if err != nil {
		return nil, err
	}
	out, dst, err := o.result(in, o.shape...)
	if err != nil {
		return nil, err
	}
	clear(dst)
	k(dst, v)
	return out, nil
}

// applyGrad adds backward op op, computing label, to the graph as node name with
// output shape and inputs in.
func applyGrad(op gradOp, label, name string, shape tensor.Shape, in ...*G.Node) (*G.Node, error) {
	base := op.base()
	base.label, base.shape = label, shape.Clone()
	for _, n := range in {
		base.dims = append(base.dims, n.Dims())
	}
	return G.ApplyOpWithName(op, name, in...)
}

// sumOp adds its inputs, all of one shape: the gradient of a node read more than once.
type sumOp struct{ gradBase }

func (o *sumOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		for _, x := range v {
			addTo(dst, x)
		}
	})
}

// colSumOp sums the rows of x [N,C], or with two inputs of the product a*b [N,C],
// giving [C]: bias and gain gradients.
type colSumOp struct{ gradBase }

func (o *colSumOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		c := len(dst)
		acc := make([]float64, c)
		for r := 0; r < len(v[0]); r += c {
			a := v[0][r : r+c]
			if len(v) == 2 {
				for j, x := range a {
					acc[j] += float64(x) * float64(v[1][r+j])
				}
				continue
			}
			for j, x := range a {
				acc[j] += float64(x)
			}
		}
		for j, s := range acc {
			dst[j] = float32(s)
		}
	})
}

// colSum returns the column sums of x [N,C], or of a*b when b is not nil: [C].
func colSum(name string, a, b *G.Node) (*G.Node, error) {
	in := []*G.Node{a}
	label := "ColSum"
	if b != nil {
		in, label = append(in, b), "ColSum(a*b)"
	}
	return applyGrad(&colSumOp{}, label, name, tensor.Shape{a.Shape()[1]}, in...)
}

// scaleColsOp multiplies each row of x [N,C] by s [C].
type scaleColsOp struct{ gradBase }

func (o *scaleColsOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		x, s := v[0], v[1]
		for r := 0; r < len(x); r += len(s) {
			for j, g := range s {
				dst[r+j] = x[r+j] * g
			}
		}
	})
}

// actGradOp is an activation's backward pass: dz = dy * act'(a), where a is the
// activation's input, or for ReLU its input or output (both are > 0 at the same places).
type actGradOp struct {
	gradBase
	act Activation
}

func (o *actGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		a, dy := v[0], v[1]
		parallel(len(a), 16384, func(lo, hi int) { activationGrad(o.act, dst[lo:hi], a[lo:hi], dy[lo:hi]) })
	})
}

// actGrad returns dy * act'(a) (actGradOp).
func actGrad(name string, act Activation, a, dy *G.Node) (*G.Node, error) {
	return applyGrad(&actGradOp{act: act}, act.String()+"'", name, a.Shape(), a, dy)
}

// transMatMulOp is a^T b for a [N,P] and b [N,Q], giving [P,Q]: weight gradients.
type transMatMulOp struct{ gradBase }

func (o *transMatMulOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		p, q := o.shape[0], o.shape[1]
		gemmTN(dst, v[0], v[1], len(v[0])/p, p, q)
	})
}

// batchSumOp sums x [B*T, D] over the B sequences: every position, giving [R, D] with
// rows T..R-1 zero (R >= T: a positional embedding longer than the run), or one
// position Row, giving [D].
type batchSumOp struct {
	gradBase
	seq, row int // row < 0: every position
}

func (o *batchSumOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		x := v[0]
		d := o.shape[len(o.shape)-1]
		for off := 0; off < len(x); off += o.seq * d {
			if o.row >= 0 {
				addTo(dst, x[off+o.row*d:off+(o.row+1)*d])
				continue
			}
			addTo(dst[:o.seq*d], x[off:off+o.seq*d])
		}
	})
}

// batchSum sums x [B*T, D] over its sequences of seq positions: into [rows, D], or,
// with row >= 0, that position only into [D] (batchSumOp).
func batchSum(name string, x *G.Node, seq, rows, row int) (*G.Node, error) {
	d := x.Shape()[1]
	shape := tensor.Shape{rows, d}
	if row >= 0 {
		shape = tensor.Shape{d}
	}
	return applyGrad(&batchSumOp{seq: seq, row: row}, fmt.Sprintf("BatchSum{T=%d,row=%d}", seq, row), name, shape, x)
}

// addTo adds x to dst elementwise.
func addTo(dst, x []float32) {
	for i, v := range x {
		dst[i] += v
	}
}

// Lookup returns the input or weight node called name (as given to Input or Param),
// or nil: how callers name what Backward differentiates with respect to.
func (b *Builder) Lookup(name string) *G.Node {
	if n, ok := b.inputs[name]; ok {
		return n
	}
	return b.params[name]
}
