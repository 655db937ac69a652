package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gemmOp is a fused op whose operand weightOperand is the weight matrix of a GEMM
// (LinearOp, Conv2dOp, PatchEmbedOp): the weights a BF16 graph stores in bfloat16.
type gemmOp interface {
	weightOperand() int
}

// bf16Op is a fused op with a bfloat16 path. Which activations a BF16 graph keeps in
// bfloat16 is decided per edge when the graph is compiled (plan): a result is stored
// in bfloat16 when its op offers that and every op reading it accepts it.
type bf16Op interface {
	// bf16Input reports whether operand i (of the input nodes in) may arrive in
	// bfloat16.
	bf16Input(i int, in []*G.Node) bool
	// bf16Output reports whether the op may store its result in bfloat16.
	bf16Output() bool
}

// SetPrecision sets the precision the graph computes in (FP32 unless set). A BF16
// graph needs its GEMM weights in bfloat16 (ConvertWeights, or ToBF16 on each);
// Compile refuses a weight in the other precision, naming it, and plans which
// activations to keep in bfloat16.
func (b *Builder) SetPrecision(p Precision) { b.prec = p }

// Precision returns the precision set by SetPrecision.
func (b *Builder) Precision() Precision { return b.prec }

// ConvertWeights converts, in place, every GEMM weight of the graph built so far to
// the builder's precision (only BF16 converts anything; see ToBF16) and returns the
// bytes saved. The layers bind the same tensors into every graph of a model, so one
// call on a graph of each tower converts the model's weights for all of its graphs.
// b itself was typed by the float32 weights and cannot be compiled afterwards: it
// is only good for finding the weights; build the graphs to run anew.
func (b *Builder) ConvertWeights() (int, error) {
	if b.prec != BF16 {
		return 0, nil
	}
	b.spent = true
	saved := 0
	for _, w := range b.gemmWeights() {
		t, ok := w.Value().(*tensor.Dense)
		if !ok {
			return saved, fmt.Errorf("graph: weight %s is a %T, not a *tensor.Dense", w.Name(), w.Value())
		}
		n, err := ToBF16(t)
		if err != nil {
			return saved, fmt.Errorf("graph: weight %s: %w", w.Name(), err)
		}
		saved += n
	}
	return saved, nil
}

// gemmWeights returns the weight nodes of the graph's GEMM ops.
func (b *Builder) gemmWeights() []*G.Node {
	var ws []*G.Node
	seen := map[*G.Node]bool{}
	for _, n := range b.G.AllNodes() {
		op, ok := n.Op().(gemmOp)
		if !ok {
			continue
		}
		if w := children(b.G, n)[op.weightOperand()]; !seen[w] {
			seen[w] = true
			ws = append(ws, w)
		}
	}
	return ws
}

// children returns n's inputs in order.
func children(g *G.ExprGraph, n *G.Node) []*G.Node {
	var in []*G.Node
	it := g.From(n.ID())
	for it.Next() {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}

// checkPrecision refuses GEMM weights in the other precision than the graph's.
func (b *Builder) checkPrecision() error {
	want := tensor.Float32
	if b.prec == BF16 {
		want = BFloat16
	}
	for _, w := range b.gemmWeights() {
		if w.Dtype() != want {
			how := "build the graph with SetPrecision(BF16), or keep the model in float32"
			if b.prec == BF16 {
				how = "convert the model's weights first (Builder.ConvertWeights, ToBF16)"
			}
			return fmt.Errorf("graph: weight %s is %v in a %v graph: %s", w.Name(), w.Dtype(), b.prec, how)
		}
	}
	return nil
}

// plan marks the results a BF16 graph stores in bfloat16: those of bf16Ops offering
// it whose every reader accepts it (an output tap never does: outputs are float32).
func (b *Builder) plan() {
	if b.prec != BF16 {
		return
	}
	for _, n := range b.G.AllNodes() {
		op, ok := n.Op().(bf16Op)
		if !ok || !op.bf16Output() {
			continue
		}
		p, ok := n.Op().(pooledOp)
		if !ok {
			continue
		}
		half := true
		readers := b.G.To(n.ID())
		for readers.Next() && half {
			r := readers.Node().(*G.Node)
			rop, ok := r.Op().(bf16Op)
			if !ok {
				half = false
				break
			}
			in := children(b.G, r)
			for i, c := range in {
				if c == n && !rop.bf16Input(i, in) {
					half = false
				}
			}
		}
		p.storage().half = half
	}
}
