package graph

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Precision is the number format a graph computes in. The zero value is FP32.
type Precision int

const (
	// FP32 computes everything in float32: the reference, exact to the PyTorch model
	// up to summation order.
	FP32 Precision = iota
	// BF16 stores the GEMM weights in bfloat16 (half the memory) and runs the GEMMs
	// on bfloat16 operands with float32 accumulation; the rest of the graph keeps
	// float32 where precision needs it (see the package documentation). CPU and CUDA.
	BF16
	// FP16 is BF16 with IEEE half-precision weights and GEMM operands (three more
	// mantissa bits, a range of +-65504): what CUDA tensor cores run fastest besides
	// bfloat16. CUDA only: the CPU runs bfloat16 (oneDNN 2.6 has no fast float16
	// GEMM on the CPUs we build on).
	FP16
	// TF32 keeps float32 weights and activations and runs the GEMMs on TF32 tensor
	// cores (inputs rounded to 10 mantissa bits, float32 accumulation). CUDA only.
	TF32
)

// String returns "fp32", "bf16", "fp16" or "tf32".
func (p Precision) String() string {
	switch p {
	case BF16:
		return "bf16"
	case FP16:
		return "fp16"
	case TF32:
		return "tf32"
	}
	return "fp32"
}

// ParsePrecision reads "fp32", "bf16", "fp16" or "tf32" (case-insensitive; "float32",
// "bfloat16", "float16" and "half" too). Anything else is an error naming the accepted
// values.
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fp32", "float32", "f32":
		return FP32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "fp16", "float16", "half", "f16":
		return FP16, nil
	case "tf32":
		return TF32, nil
	}
	return FP32, fmt.Errorf("graph: unknown precision %q (want fp32, bf16, or on CUDA fp16 or tf32)", s)
}

// half reports whether p stores the GEMM weights in 16 bits (BF16, FP16).
func (p Precision) half() bool { return p == BF16 || p == FP16 }

// CPU reports whether p runs on the CPU (FP32, BF16); FP16 and TF32 need a CUDA device.
func (p Precision) CPU() bool { return p == FP32 || p == BF16 }

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

// SetPrecision sets the precision the graph computes in (FP32 unless set). A BF16 or
// FP16 graph needs its GEMM weights in 16 bits (ConvertWeights, or ToBF16 / ToFP16
// on each); Compile refuses a weight in the other precision, naming it, refuses FP16
// and TF32 for the CPU, and on the CPU plans which activations to keep in bfloat16.
func (b *Builder) SetPrecision(p Precision) { b.prec = p }

// Precision returns the precision set by SetPrecision.
func (b *Builder) Precision() Precision { return b.prec }

// ConvertWeights converts, in place, every GEMM weight of the graph built so far to
// the builder's precision (BF16 and FP16 convert; see ToBF16 and ToFP16) and returns
// the bytes saved. The layers bind the same tensors into every graph of a model, so one
// call on a graph of each tower converts the model's weights for all of its graphs.
// b itself was typed by the float32 weights and cannot be compiled afterwards: it
// is only good for finding the weights; build the graphs to run anew.
func (b *Builder) ConvertWeights() (int, error) {
	if !b.prec.half() {
		return 0, nil
	}
	convert := ToBF16
	if b.prec == FP16 {
		convert = ToFP16
	}
	b.spent = true
	saved := 0
	for _, w := range b.gemmWeights() {
		t, err := weightTensor(w)
		if err != nil {
			return saved, err
		}
		n, err := convert(t)
		if err != nil {
			return saved, fmt.Errorf("graph: weight %s: %w", w.Name(), err)
		}
		saved += n
	}
	return saved, nil
}

// GEMMWeights returns the weight tensors of the graph's GEMM ops (LinearOp,
// Conv2dOp, PatchEmbedOp), each once: the weights a BF16 or FP16 graph needs in 16
// bits, everything else staying float32. It is the one rule for which weights a
// 16-bit model converts, whether after loading (ConvertWeights) or as it reads them
// (Halve).
func (b *Builder) GEMMWeights() ([]*tensor.Dense, error) {
	var ts []*tensor.Dense
	for _, w := range b.gemmWeights() {
		t, err := weightTensor(w)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// weightTensor returns the value of weight node w.
func weightTensor(w *G.Node) (*tensor.Dense, error) {
	t, ok := w.Value().(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("graph: weight %s is a %T, not a *tensor.Dense", w.Name(), w.Value())
	}
	return t, nil
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

// checkPrecision refuses a precision the device cannot run, and GEMM weights in
// another precision than the graph's.
func (b *Builder) checkPrecision() error {
	if b.dev == nil && !b.prec.CPU() {
		return fmt.Errorf("graph: %v runs on a CUDA device only; on the CPU use bf16 or fp32", b.prec)
	}
	want := tensor.Float32
	if b.prec.half() {
		want = BFloat16
	}
	for _, w := range b.gemmWeights() {
		if w.Dtype() == BF16Blocked {
			if b.prec != BF16 || b.dev != nil {
				return fmt.Errorf("graph: weight %s is in oneDNN's blocked bfloat16 layout (PackWeights), which only a bf16 graph on the CPU reads: load the model again for %v on this device", w.Name(), b.prec)
			}
			continue
		}
		if w.Dtype() != want {
			how := "build the graph with SetPrecision(BF16) or (FP16), or keep the model in float32"
			if b.prec.half() {
				how = "convert the model's weights first (Builder.ConvertWeights, ToBF16, ToFP16)"
			}
			got := "float32"
			if w.Dtype() == BFloat16 {
				got = "16-bit (bf16 or fp16)"
			}
			return fmt.Errorf("graph: weight %s is %s in a %v graph: %s", w.Name(), got, b.prec, how)
		}
	}
	return nil
}

// plan tells every fused op the graph's precision and, in a BF16 graph on the CPU,
// marks the results stored in bfloat16: those of bf16Ops offering it whose every
// reader accepts it (an output tap never does: outputs are float32). On a CUDA device
// activations stay float32: each GEMM rounds its input to 16 bits as it reads it
// (gemm_cuda.go).
func (b *Builder) plan() {
	for _, n := range b.G.AllNodes() {
		if p, ok := n.Op().(pooledOp); ok {
			p.storage().prec = b.prec
		}
	}
	if b.prec != BF16 || b.dev != nil {
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
		readers := b.G.To(n.ID()) // of the graph before prune: skip the dropped ones
		for readers.Next() && half {
			r := readers.Node().(*G.Node)
			if !b.live[r] {
				continue
			}
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
