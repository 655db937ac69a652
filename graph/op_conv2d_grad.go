package graph

import (
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// DiffWRT reports x, weight and bias differentiable.
func (o *Conv2dOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds the convolution's backward pass: dz = dy * act'(pre) (ReLU's
// derivative read from y; other activations recompute the pre-activation), then
// dx = col2im(dz @ W), dW = dz^T im2col(x), dbias = column sums of dz.
func (o *Conv2dOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w, bias := inputs[0], inputs[1], inputs[2]
	grads := make(G.Nodes, 3)
	name := output.Name()
	dz, err := preActivationGrad(name, o.Act, output, grad, func() (*G.Node, error) {
		lin := *o
		lin.owned, lin.cols, lin.Act = owned{}, nil, Identity
		return G.ApplyOpWithName(&lin, name+".pre", x, w, bias)
	})
	if err != nil {
		return nil, err
	}
	if o.needs(0) {
		if grads[0], err = applyGrad(&conv2dGradOp{fwd: o}, "Conv2d'x", name+".dx", x.Shape(), dz, w); err != nil {
			return nil, err
		}
	}
	if o.needs(1) {
		if grads[1], err = applyGrad(&conv2dGradOp{fwd: o, weight: true}, "Conv2d'weight", name+".dweight", w.Shape(), dz, x); err != nil {
			return nil, err
		}
	}
	if o.needs(2) {
		if grads[2], err = colSum(name+".dbias", dz, nil); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// convGradChunkFloats bounds the backward ops' scratch as convChunkFloats does the
// forward op's (a variable so that tests can make chunks end inside an image).
var convGradChunkFloats = convChunkFloats

// conv2dGradOp is Conv2dOp's dx (inputs dz [B*Ho*Wo, Cout], W) or, with weight set,
// its dW [Cout, K*K*Cin] (inputs dz, x), chunk by chunk of output pixels as the
// forward op runs.
type conv2dGradOp struct {
	gradBase
	fwd    *Conv2dOp
	weight bool
	cols   []float32 // receptive-field rows (or their gradients) of one chunk, reused
}

func (o *conv2dGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		f := o.fwd
		dz := v[0]
		ho, wo := f.OutSize()
		rows := f.Batch * ho * wo
		cout := len(dz) / rows
		kkc := f.Kernel * f.Kernel * f.In
		chunk := max(1, min(rows, convGradChunkFloats/kkc))
		if len(o.cols) < chunk*kkc {
			o.cols = make([]float32, chunk*kkc)
		}
		for r0 := 0; r0 < rows; r0 += chunk {
			n := min(chunk, rows-r0)
			cols, g := o.cols[:n*kkc], dz[r0*cout:(r0+n)*cout]
			if o.weight {
				parallel(n, grainRows(kkc), func(lo, hi int) { f.im2col(cols[lo*kkc:hi*kkc], v[1], r0+lo, r0+hi) })
				gemm.Sgemm(blas.Trans, blas.NoTrans, cout, kkc, n, 1, g, cout, cols, kkc, 1, dst, kkc)
				continue
			}
			gemm.Sgemm(blas.NoTrans, blas.NoTrans, n, kkc, cout, 1, g, cout, v[1], kkc, 0, cols, kkc)
			// Receptive fields overlap within an image, never across: one goroutine per
			// range of images.
			per := ho * wo
			b0, b1 := r0/per, (r0+n-1)/per+1
			parallel(b1-b0, 1, func(lo, hi int) {
				a, e := max(r0, (b0+lo)*per), min(r0+n, (b0+hi)*per)
				f.col2im(dst, cols[(a-r0)*kkc:(e-r0)*kkc], a, e)
			})
		}
	})
}

// col2im adds the receptive-field gradients cols of output pixels [lo,hi) (rows as
// im2col writes them) into the input gradient dx, skipping the padding: im2col's
// adjoint, the same walk with the copies reversed (im2col is left as it was, the
// forward pass's hot loop).
func (o *Conv2dOp) col2im(dx, cols []float32, lo, hi int) {
	ho, wo := o.OutSize()
	k, c, h, w := o.Kernel, o.In, o.Height, o.Width
	i := 0
	for r := lo; r < hi; r++ {
		b, oy, ox := r/(ho*wo), (r/wo)%ho, r%wo
		for ky := range k {
			iy := oy*o.Stride - o.Pad + ky
			for kx := range k {
				ix := ox*o.Stride - o.Pad + kx
				cell := cols[i : i+c]
				i += c
				switch {
				case iy < 0 || iy >= h || ix < 0 || ix >= w:
				case o.ChannelsFirst:
					for ci, g := range cell {
						dx[((b*c+ci)*h+iy)*w+ix] += g
					}
				default:
					addTo(dx[((b*h+iy)*w+ix)*c:], cell)
				}
			}
		}
	}
}

// DiffWRT reports x differentiable.
func (o *AvgPoolOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff spreads each window's gradient evenly over its K*K inputs (inputs beyond
// the last whole window get none).
func (o *AvgPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if !o.needs(0) {
		return make(G.Nodes, 1), nil
	}
	d, err := applyGrad(&avgPoolGradOp{fwd: o}, "AvgPool'", output.Name()+".dx", inputs[0].Shape(), grad)
	return G.Nodes{d}, err
}

// avgPoolGradOp is AvgPoolOp's dx [B*H*W, C] from dy [B*(H/K)*(W/K), C].
type avgPoolGradOp struct {
	gradBase
	fwd *AvgPoolOp
}

func (o *avgPoolGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		f := o.fwd
		k, c := f.Kernel, o.shape[1]
		ho, wo := f.Height/k, f.Width/k
		inv := 1 / float32(k*k)
		parallel(f.Batch*f.Height*f.Width, grainRows(c), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				b, y, x := r/(f.Height*f.Width), (r/f.Width)%f.Height, r%f.Width
				if y/k >= ho || x/k >= wo {
					continue
				}
				src := v[0][((b*ho+y/k)*wo+x/k)*c:]
				for j := range c {
					dst[r*c+j] = src[j] * inv
				}
			}
		})
	})
}

// DiffWRT reports x and the positional embedding differentiable.
func (o *PoolTokensOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff: each spatial token gets its own row's gradient plus 1/S of the mean
// token's; the positional embedding gets the sum over images.
func (o *PoolTokensOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 2)
	var err error
	if o.needs(0) {
		if grads[0], err = applyGrad(&poolTokensGradOp{fwd: o}, "PoolTokens'", output.Name()+".dx", inputs[0].Shape(), grad); err != nil {
			return nil, err
		}
	}
	if o.needs(1) {
		if grads[1], err = batchSum(output.Name()+".dpositional", grad, o.Spatial+1, o.Spatial+1, -1); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// poolTokensGradOp is PoolTokensOp's dx [B*S, C] from dtok [B*(S+1), C].
type poolTokensGradOp struct {
	gradBase
	fwd *PoolTokensOp
}

func (o *poolTokensGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		sp, c := o.fwd.Spatial, o.shape[1]
		inv := 1 / float32(sp)
		for b := range o.fwd.Batch {
			tok := v[0][b*(sp+1)*c:]
			for r := range sp {
				for j := range c {
					dst[(b*sp+r)*c+j] = tok[(r+1)*c+j] + tok[j]*inv
				}
			}
		}
	})
}

// DiffWRT reports x differentiable.
func (o *ChannelsFirstOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff transposes the gradient back to channels last.
func (o *ChannelsFirstOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if !o.needs(0) {
		return make(G.Nodes, 1), nil
	}
	d, err := applyGrad(&channelsLastOp{spatial: o.Spatial}, "ChannelsLast", output.Name()+".dx", inputs[0].Shape(), grad)
	return G.Nodes{d}, err
}

// channelsLastOp is ChannelsFirstOp's inverse: [B, C*S] to [B*S, C].
type channelsLastOp struct {
	gradBase
	spatial int
}

func (o *channelsLastOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		sp, c := o.spatial, o.shape[1]
		for i := range o.shape[0] / sp {
			img, y := v[0][i*sp*c:], dst[i*sp*c:]
			for r := range sp {
				for j := range c {
					y[r*c+j] = img[j*sp+r]
				}
			}
		}
	})
}
