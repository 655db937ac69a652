package graph

import G "gorgonia.org/gorgonia"

// DiffWRT reports x, gain and bias differentiable (narrowed by Backward).
func (o *LayerNormOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds LayerNorm's backward pass from x (the statistics are recomputed):
// dx (layerNormGrad), dgain = sum over rows of dy * xhat, dbias = sum over rows of dy.
func (o *LayerNormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, gain := inputs[0], inputs[1]
	grads := make(G.Nodes, 3)
	name := output.Name()
	var err error
	if o.needs(0) {
		if grads[0], err = applyGrad(&layerNormGradOp{eps: o.Eps}, "LayerNorm'", name+".dx", x.Shape(), x, gain, grad); err != nil {
			return nil, err
		}
	}
	if o.needs(1) {
		if grads[1], err = applyGrad(&layerNormGainGradOp{eps: o.Eps}, "LayerNorm'gain", name+".dgain", gain.Shape(), x, grad); err != nil {
			return nil, err
		}
	}
	if o.needs(2) {
		if grads[2], err = colSum(name+".dbias", grad, nil); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// layerNormGradOp is dx of LayerNorm: inputs x [N,D], gain [D], dy [N,D].
type layerNormGradOp struct {
	gradBase
	eps float32
}

func (o *layerNormGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		d := o.shape[1]
		parallel(o.shape[0], grainRows(d), func(lo, hi int) {
			layerNormGrad(dst[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2][lo*d:hi*d], d, o.eps)
		})
	})
}

// layerNormGainGradOp is dgain of LayerNorm: inputs x [N,D], dy [N,D].
type layerNormGainGradOp struct {
	gradBase
	eps float32
}

func (o *layerNormGainGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) { layerNormGainGrad(dst, v[0], v[1], len(dst), o.eps) })
}
