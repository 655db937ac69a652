package graph

import (
	G "gorgonia.org/gorgonia"
)

// weightOperand is W's position (gemmOp).
func (o *LinearOp) weightOperand() int { return 1 }

// bf16Input accepts x in bfloat16 when W is (the GEMM rounds x to bfloat16 anyway);
// bias, scale and the residual stay float32.
func (o *LinearOp) bf16Input(i int, in []*G.Node) bool { return i == 0 && is16(in[1].Dtype()) }

// bf16Output offers a bfloat16 result unless the op ends a residual branch: the
// residual stream stays float32.
func (o *LinearOp) bf16Output() bool { return !o.Residual }

// doBF16 is Do for a bfloat16 W (plain or BF16Blocked): one fused GEMM (fusedGEMM)
// straight into the op's storage, epilogue included.
func (o *LinearOp) doBF16(in []G.Value) (G.Value, error) {
	x, err := activation(in[0])
	if err != nil {
		return nil, err
	}
	n, nin := x.Shape[0], x.Shape[1]
	_, nout := o.dims(in[1].Shape())
	out, dst, err := o.resultAct(in, n, nout)
	if err != nil {
		return nil, err
	}
	var bias, scale []float32
	var res act
	bv, sv, rv := operands(o, in)
	if o.Bias {
		if bias, _, err = f32(bv); err != nil {
			return nil, err
		}
	}
	if o.Scale {
		if scale, _, err = f32(sv); err != nil {
			return nil, err
		}
	}
	if o.Residual {
		if res, err = activation(rv); err != nil {
			return nil, err
		}
	}
	w, blocked := weight16(in[1])
	spec := mmSpec{N: nout, K: nin, InOut: o.InOut, Blocked: blocked, XHalf: x.H != nil, DstHalf: dst.H != nil, LDD: nout,
		Bias: o.Bias, Scale: o.Scale, Res: res.kind(), Act: o.Act}
	o.mm = reuseMatmul(o.mm, spec)
	return out, o.mm.run(n, x, w, bias, scale, res, dst)
}

// release frees the op's compiled GEMM (Machine.Close).
func (o *LinearOp) release() {
	o.mm.free()
	o.mm = nil
}
