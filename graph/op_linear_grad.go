package graph

import G "gorgonia.org/gorgonia"

// DiffWRT reports every input differentiable (narrowed by Backward to those needed).
func (o *LinearOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds the backward pass of y = act((x @ W^T + bias) * scale + residual):
// dz = dy * act'(pre) (for QuickGELU and GELU the pre-activation is recomputed by a
// second LinearOp without the activation rather than kept by the forward op, so that
// inference stays as it is; ReLU's derivative is read from y), then
// dresidual = dz, du = dz * scale, dx = du @ W (a LinearOp on the other layout),
// dW = du^T x, dbias = column sums of du, dscale = column sums of dz * (x @ W^T + bias).
func (o *LinearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	bias, scale, res := operands(o, inputs)
	iBias, iScale, iRes := o.inputIndex()
	grads := make(G.Nodes, len(inputs))
	name := output.Name()
	dz, err := preActivationGrad(name, o.Act, output, grad, func() (*G.Node, error) {
		return Linear(name+".pre", x, w, LinearOptions{Bias: bias, Scale: scale, Residual: res, InOut: o.InOut})
	})
	if err != nil {
		return nil, err
	}
	if o.Residual && o.needs(iRes) {
		grads[iRes] = dz
	}
	du := dz
	if o.Scale {
		if o.needs(iScale) {
			u, err := Linear(name+".unscaled", x, w, LinearOptions{Bias: bias, InOut: o.InOut})
			if err != nil {
				return nil, err
			}
			if grads[iScale], err = colSum(name+".dscale", dz, u); err != nil {
				return nil, err
			}
		}
		if o.needs(0) || o.needs(1) || o.Bias && o.needs(iBias) {
			if du, err = applyGrad(&scaleColsOp{}, "ScaleCols", name+".dscaled", dz.Shape(), dz, scale); err != nil {
				return nil, err
			}
		}
	}
	if o.needs(0) {
		if grads[0], err = Linear(name+".dx", du, w, LinearOptions{InOut: !o.InOut}); err != nil {
			return nil, err
		}
	}
	if o.needs(1) {
		a, b := du, x // dW [Out,In] = du^T x
		if o.InOut {
			a, b = x, du // dW [In,Out] = x^T du
		}
		if grads[1], err = applyGrad(&transMatMulOp{}, "MatMul(a^T,b)", name+".dweight", w.Shape(), a, b); err != nil {
			return nil, err
		}
	}
	if o.Bias && o.needs(iBias) {
		if grads[iBias], err = colSum(name+".dbias", du, nil); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// preActivationGrad returns the gradient before activation act of an op whose output
// is y and output gradient dy: dy itself for Identity, ReLU's derivative read from y,
// and for the others the derivative at the pre-activation that recompute rebuilds.
func preActivationGrad(name string, act Activation, y, dy *G.Node, recompute func() (*G.Node, error)) (*G.Node, error) {
	switch act {
	case Identity:
		return dy, nil
	case ReLU:
		return actGrad(name+".dact", ReLU, y, dy)
	}
	pre, err := recompute()
	if err != nil {
		return nil, err
	}
	return actGrad(name+".dact", act, pre, dy)
}

// inputIndex returns the positions of bias, scale and residual among the inputs
// (meaningful only for those present).
func (o *LinearOp) inputIndex() (bias, scale, res int) {
	return operands(o, []int{0, 1, 2, 3, 4})
}
