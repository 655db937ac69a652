package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LinearOp is torch.nn.Linear fused with what follows it in a transformer block or a
// ResNet bottleneck: y = act((x @ W^T + bias) * scale + residual), one BLAS sgemm on
// the inputs' backing arrays followed by one pass over y. Inputs: x [N,In], W [Out,In]
// (or [In,Out] with InOut, for CLIP's projections stored as x @ proj), then bias [Out]
// when Bias is set, scale [Out] when Scale is set (open_clip's layer scale), residual
// [N,Out] when Residual is set. Output: [N,Out]. A 1x1 convolution over channels-last
// feature maps [B*H*W, C] is the same product, so the ResNet towers use it too.
type LinearOp struct {
	owned
	// InOut says W is stored [In,Out] (y = x @ W) rather than PyTorch's [Out,In].
	InOut bool
	// Bias says a bias input follows W.
	Bias bool
	// Scale says a per-column gain [Out] follows (after the bias).
	Scale bool
	// Residual says a residual input [N,Out] follows and is added to the result.
	Residual bool
	// Act is applied last, after the residual add.
	Act Activation

	mm *fusedGEMM // the fused GEMM of a bfloat16 weight (op_linear_bf16.go), or of a float32 one on oneDNN
}

// Arity is 2, plus one each for Bias, Scale and Residual.
func (o *LinearOp) Arity() int {
	n := 2
	for _, b := range []bool{o.Bias, o.Scale, o.Residual} {
		if b {
			n++
		}
	}
	return n
}

// Type is Matrix, Matrix[, Vector][, Vector][, Matrix] -> Matrix; the weight may be
// float32, BFloat16 or BF16Blocked.
func (o *LinearOp) Type() hm.Type {
	ts := []hm.Type{tt(2), weightType(2)}
	if o.Bias {
		ts = append(ts, tt(1))
	}
	if o.Scale {
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

// operands splits Do's inputs (or their shapes) into bias, scale and residual, each
// the zero value when absent.
func operands[T any](o *LinearOp, v []T) (bias, scale, res T) {
	i := 2
	if o.Bias {
		bias, i = v[i], i+1
	}
	if o.Scale {
		scale, i = v[i], i+1
	}
	if o.Residual {
		res = v[i]
	}
	return bias, scale, res
}

// InferShape returns [N,Out] after checking every input against x and W.
func (o *LinearOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.kind(), o.Arity(), in)
	if err != nil {
		return nil, err
	}
	x, w := s[0], s[1]
	if len(x) != 2 || len(w) != 2 {
		return nil, fmt.Errorf("graph: %s: x %v, weight %v", o.kind(), x, w)
	}
	nin, nout := o.dims(w)
	if x[1] != nin {
		return nil, fmt.Errorf("graph: %s: x %v does not match weight %v (inputs %d)", o.kind(), x, w, nin)
	}
	bias, scale, res := operands(o, s)
	if o.Bias && bias.TotalSize() != nout {
		return nil, fmt.Errorf("graph: %s: bias %v, want %d values", o.kind(), bias, nout)
	}
	if o.Scale && scale.TotalSize() != nout {
		return nil, fmt.Errorf("graph: %s: scale %v, want %d values", o.kind(), scale, nout)
	}
	if o.Residual && !res.Eq(tensor.Shape{x[0], nout}) {
		return nil, fmt.Errorf("graph: %s: residual %v, want [%d %d]", o.kind(), res, x[0], nout)
	}
	return tensor.Shape{x[0], nout}, nil
}

// Do runs the GEMM straight into the op's storage: on oneDNN with the epilogue fused
// where the build has it (fp32GEMM), else through gemm (OpenBLAS or gonum) and then
// the epilogue in one parallel pass.
func (o *LinearOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	if h, _ := weight16(in[1]); h != nil { // a BF16 graph (op_linear_bf16.go)
		return o.doBF16(in)
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
	bias, scale, res := operands(o, v)
	if fp32GEMM {
		resK := noRes
		if o.Residual {
			resK = resF32
		}
		o.mm = reuseMatmul(o.mm, mmSpec{N: nout, K: nin, InOut: o.InOut, F32: true, LDD: nout,
			Bias: o.Bias, Scale: o.Scale, Res: resK, Act: o.Act})
		if done, err := o.mm.runF32(n, v[0], v[1], bias, scale, res, dst); done || err != nil {
			return out, err
		}
	}
	tw := blas.Trans
	if o.InOut {
		tw = blas.NoTrans
	}
	gemm.Sgemm(blas.NoTrans, tw, n, nout, nin, 1, v[0], nin, v[1], s[1][1], 0, dst, nout)
	if bias == nil && scale == nil && res == nil && o.Act == Identity {
		return out, nil
	}
	parallel(n, grainRows(nout), func(lo, hi int) {
		y, r := dst[lo*nout:hi*nout], res[min(lo*nout, len(res)):min(hi*nout, len(res))]
		if scale != nil || !cLinearEpilogue(y, bias, r, nout, o.Act) {
			linearEpilogue(y, bias, scale, r, nout, o.Act)
		}
	})
	return out, nil
}

// linearEpilogue finishes rows y [rows,Out] of a Linear: y += bias (each row),
// y *= scale (each row), y += res when res is not empty, then the activation.
func linearEpilogue(y, bias, scale, res []float32, nout int, act Activation) {
	for r := 0; r < len(y); r += nout {
		row := y[r : r+nout]
		if bias != nil {
			for j, b := range bias {
				row[j] += b
			}
		}
		if scale != nil {
			for j, g := range scale {
				row[j] *= g
			}
		}
		if len(res) > 0 {
			for j, x := range res[r : r+nout] {
				row[j] += x
			}
		}
		act.apply(row)
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
	if o.Scale {
		k += "*scale"
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

// LinearOptions are the parts of a Linear besides x and the weight.
type LinearOptions struct {
	// Bias [Out] is added when not nil.
	Bias *G.Node
	// Scale [Out] multiplies the result (after the bias) when not nil.
	Scale *G.Node
	// Residual [N,Out] is added when not nil.
	Residual *G.Node
	// Act is applied last.
	Act Activation
	// InOut says the weight is stored [In,Out] (y = x @ W), not [Out,In].
	InOut bool
}

// Linear returns x [N,In] times the weight w ([Out,In], transposed, or [In,Out] with
// InOut) with what opt adds (LinearOp).
func Linear(name string, x, w *G.Node, opt LinearOptions) (*G.Node, error) {
	op := &LinearOp{InOut: opt.InOut, Bias: opt.Bias != nil, Scale: opt.Scale != nil, Residual: opt.Residual != nil, Act: opt.Act}
	in := []*G.Node{x, w}
	for _, n := range []*G.Node{opt.Bias, opt.Scale, opt.Residual} {
		if n != nil {
			in = append(in, n)
		}
	}
	return G.ApplyOpWithName(op, name, in...)
}
