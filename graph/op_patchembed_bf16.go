package graph

import (
	G "gorgonia.org/gorgonia"
)

// weightOperand is conv1's position (gemmOp).
func (o *PatchEmbedOp) weightOperand() int { return 1 }

// doBF16 is Do for a bfloat16 conv1: per image, the class and positional embeddings
// in float32, then the patches (rounded to bfloat16) times conv1 accumulated onto
// them by one fused GEMM. The tokens stay float32: they start the residual stream.
func (o *PatchEmbedOp) doBF16(in []G.Value) (G.Value, error) {
	v := make([][]float32, 4)
	for _, i := range []int{0, 2, 3} {
		var err error
		if v[i], _, err = f32(in[i]); err != nil {
			return nil, err
		}
	}
	px, cls, pos := v[0], v[2], v[3]
	r, p, d := o.Resolution, o.Patch, in[1].Shape()[0]
	g2, pp := (r/p)*(r/p), 3*p*p
	t := g2 + 1
	out, dst, err := o.result(in, o.Batch*t, d)
	if err != nil {
		return nil, err
	}
	spec := mmSpec{N: d, K: pp, XHalf: true, LDD: d, Accumulate: true}
	o.mm = reuseMatmul(o.mm, spec)
	if len(o.patches) != g2*pp {
		o.patches, o.patches16 = make([]float32, g2*pp), make([]uint16, g2*pp)
	}
	for b := 0; b < o.Batch; b++ {
		tok := dst[b*t*d : (b+1)*t*d]
		o.start(tok, px, cls, pos, b)
		toBF16(o.patches16, o.patches)
		if err := o.mm.run(g2, act{H: o.patches16}, bf16Data(in[1]), nil, nil, act{}, act{F: tok[d:]}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// release frees the op's compiled GEMM (Machine.Close).
func (o *PatchEmbedOp) release() {
	o.mm.free()
	o.mm = nil
}
