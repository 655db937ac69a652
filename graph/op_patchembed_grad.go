package graph

import (
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// DiffWRT reports pixels, conv1, class and positional embeddings differentiable.
func (o *PatchEmbedOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff builds the patch embedding's backward pass from dtok [B*T, D]: dpixels (the
// patch rows' gradient dtok[1:] @ W laid back into the images), dW (sum over images of
// dtok[1:]^T patches), dclass (sum of row 0 over images), dpositional (sum over images).
func (o *PatchEmbedOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	px, w := inputs[0], inputs[1]
	grads := make(G.Nodes, 4)
	name := output.Name()
	t := output.Shape()[0] / o.Batch
	var err error
	if o.needs(0) {
		if grads[0], err = applyGrad(&patchEmbedGradOp{fwd: o}, "PatchEmbed'pixels", name+".dpixels", px.Shape(), grad, w); err != nil {
			return nil, err
		}
	}
	if o.needs(1) {
		if grads[1], err = applyGrad(&patchEmbedGradOp{fwd: o, weight: true}, "PatchEmbed'weight", name+".dweight", w.Shape(), grad, px); err != nil {
			return nil, err
		}
	}
	if o.needs(2) {
		if grads[2], err = batchSum(name+".dclass", grad, t, t, 0); err != nil {
			return nil, err
		}
	}
	if o.needs(3) {
		if grads[3], err = batchSum(name+".dpositional", grad, t, t, -1); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// patchEmbedGradOp is PatchEmbedOp's dpixels [B, 3*R*R] (inputs dtok, W) or, with
// weight set, its dW [D, 3*P*P] (inputs dtok, pixels).
type patchEmbedGradOp struct {
	gradBase
	fwd     *PatchEmbedOp
	weight  bool
	patches []float32 // scratch [G*G, 3*P*P], reused
}

func (o *patchEmbedGradOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		f := o.fwd
		r, p := f.Resolution, f.Patch
		g2, pp := (r/p)*(r/p), 3*p*p
		d := len(v[0]) / (f.Batch * (g2 + 1))
		if len(o.patches) != g2*pp {
			o.patches = make([]float32, g2*pp)
		}
		for b := range f.Batch {
			dtok := v[0][(b*(g2+1)+1)*d:] // the patch rows of image b
			if o.weight {
				patchify(o.patches, v[1][b*3*r*r:(b+1)*3*r*r], r, p)
				gemm.Sgemm(blas.Trans, blas.NoTrans, d, pp, g2, 1, dtok, d, o.patches, pp, 1, dst, pp)
				continue
			}
			gemm.Sgemm(blas.NoTrans, blas.NoTrans, g2, pp, d, 1, dtok, d, v[1], pp, 0, o.patches, pp)
			unpatchify(dst[b*3*r*r:(b+1)*3*r*r], o.patches, r, p)
		}
	})
}

// unpatchify is patchify's inverse: it lays rows [G*G, 3*P*P] back into an image
// [3,R,R] (the patches do not overlap, so every pixel comes from one row).
func unpatchify(px, rows []float32, r, p int) {
	g := r / p
	i := 0
	for gy := range g {
		for gx := range g {
			for c := range 3 {
				for py := range p {
					off := (c*r+gy*p+py)*r + gx*p
					copy(px[off:off+p], rows[i:i+p])
					i += p
				}
			}
		}
	}
}

// DiffWRT reports x and the positional embedding differentiable.
func (o *AddPositionalOp) DiffWRT(n int) []bool { return o.diffWRT(n) }

// SymDiff: dx is dy itself; dpositional sums dy over the sequences into the first T
// rows of the embedding's [Tmax, D].
func (o *AddPositionalOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 2)
	if o.needs(0) {
		grads[0] = grad
	}
	if o.needs(1) {
		var err error
		if grads[1], err = batchSum(output.Name()+".dpositional", grad, o.Seq, inputs[1].Shape()[0], -1); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// DiffWRT reports x differentiable, not the positions.
func (o *SelectRowsOp) DiffWRT(n int) []bool { return o.diffWRT(n, 1) }

// SymDiff scatters dy [B, D] back to the picked rows of a zero [B*T, D].
func (o *SelectRowsOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, len(inputs))
	if !o.needs(0) {
		return grads, nil
	}
	in := G.Nodes{grad}
	if o.Dynamic {
		in = append(in, inputs[1])
	}
	var err error
	grads[0], err = applyGrad(&scatterRowsOp{fwd: o}, "ScatterRows", output.Name()+".dx", inputs[0].Shape(), in...)
	return grads, err
}

// scatterRowsOp writes dy [B, D] to the rows SelectRowsOp picked: dst[b*T + idx[b]].
type scatterRowsOp struct {
	gradBase
	fwd *SelectRowsOp
}

func (o *scatterRowsOp) Do(in ...G.Value) (G.Value, error) {
	return o.run(o, in, func(dst []float32, v [][]float32) {
		d, t := o.shape[1], o.fwd.Seq
		for b := range len(v[0]) / d {
			p := o.fwd.Index
			if o.fwd.Dynamic {
				p = int(v[1][b]) // checked by the forward op, which ran first
			}
			copy(dst[(b*t+p)*d:(b*t+p+1)*d], v[0][b*d:(b+1)*d])
		}
	})
}
