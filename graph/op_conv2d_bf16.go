package graph

import (
	G "gorgonia.org/gorgonia"
)

// weightOperand is the weight's position (gemmOp).
func (o *Conv2dOp) weightOperand() int { return 1 }

// bf16Input accepts x in bfloat16 when the weight is: its receptive fields are the
// GEMM's bfloat16 operand.
func (o *Conv2dOp) bf16Input(i int, in []*G.Node) bool { return i == 0 && in[1].Dtype() == BFloat16 }

// bf16Output offers a bfloat16 result (the readers decide; see plan).
func (o *Conv2dOp) bf16Output() bool { return true }

// doBF16 is Do for a bfloat16 weight: im2col into bfloat16 rows, chunk by chunk, then
// one fused GEMM (bias and activation in its epilogue) per chunk.
func (o *Conv2dOp) doBF16(in []G.Value) (G.Value, error) {
	x, err := activation(in[0])
	if err != nil {
		return nil, err
	}
	bias, _, err := f32(in[2])
	if err != nil {
		return nil, err
	}
	ws := in[1].Shape()
	cout, kkc := ws[0], ws[1]
	ho, wo := o.OutSize()
	rows := o.Batch * ho * wo
	out, dst, err := o.resultAct(in, rows, cout)
	if err != nil {
		return nil, err
	}
	spec := mmSpec{N: cout, K: kkc, XHalf: true, DstHalf: dst.H != nil, LDD: cout, Bias: true, Act: o.Act}
	o.mm = reuseMatmul(o.mm, spec)
	chunk := max(1, min(rows, convChunkFloats/kkc))
	if len(o.cols16) < chunk*kkc {
		o.cols16 = make([]uint16, chunk*kkc)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		cols := o.cols16[:n*kkc]
		parallel(n, grainRows(kkc), func(lo, hi int) {
			if x.H != nil {
				fields(o, cols[lo*kkc:hi*kkc], x.H, r0+lo, r0+hi)
				return
			}
			f := make([]float32, min(hi-lo, xBlock)*kkc) // float32 fields, xBlock rows at a time
			for r := lo; r < hi; r += xBlock {
				e := min(r+xBlock, hi)
				o.im2col(f[:(e-r)*kkc], x.F, r0+r, r0+e)
				toBF16(cols[r*kkc:e*kkc], f[:(e-r)*kkc])
			}
		})
		if err := o.mm.run(n, act{H: cols}, bf16Data(in[1]), bias, nil, act{}, dst.rows(r0, r0+n, cout)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// release frees the op's compiled GEMM (Machine.Close).
func (o *Conv2dOp) release() {
	o.mm.free()
	o.mm = nil
}
